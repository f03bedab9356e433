// Package certs makes and checks the certificates of a Holocron cluster,
// after CockroachDB's `cert` commands: one CA per cluster, whose key stays
// off the nodes; a certificate per node that names the node, so that a peer
// proves which node it is and not only that it belongs to the cluster; and
// client certificates for operators' tools.
//
// Keys are ECDSA P-256: TLS 1.3 handshakes with them are cheap, and every
// Go TLS stack speaks them.
package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a certs directory (CockroachDB's layout).
const (
	CAFile       = "ca.crt"
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
)

// ClientCertFile and ClientKeyFile name a client's pair in a certs
// directory: several users' pairs can sit side by side.
func ClientCertFile(user string) string { return "client." + user + ".crt" }

// ClientKeyFile is the key beside ClientCertFile.
func ClientKeyFile(user string) string { return "client." + user + ".key" }

// Organizations tell node from client certificates: a client certificate
// must never pass as a node on the peer link.
const (
	nodeOrg   = "Holocron node"
	clientOrg = "Holocron client"
	caOrg     = "Holocron CA"
)

// identityScheme is the URI SAN that carries a node's or a client's name:
// holocron://node/NAME or holocron://client/NAME.
const identityScheme = "holocron"

// Default lifetimes (CockroachDB's): the CA outlives the certificates it
// signs.
const (
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour
	DefaultCertLifetime = 5 * 365 * 24 * time.Hour
)

// Options are what every create command takes.
type Options struct {
	// CertsDir receives ca.crt and the created certificate and key.
	CertsDir string
	// CAKey is the CA's private key file (kept out of CertsDir).
	CAKey string
	// Lifetime of the created certificate; zero means the default.
	Lifetime time.Duration
	// Overwrite replaces existing files; without it, creating over an
	// existing file is an error.
	Overwrite bool
	// Now is the clock (tests); zero means time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// CreateCA makes the cluster's CA: ca.crt in CertsDir and its key at CAKey.
// An existing CA key is reused (its certificate is made anew), so that a
// CA certificate can be renewed without re-issuing every node's.
func CreateCA(o Options) error {
	if o.CertsDir == "" || o.CAKey == "" {
		return errors.New("create-ca needs a certs directory and a CA key path")
	}
	key, err := loadKey(o.CAKey)
	if errors.Is(err, os.ErrNotExist) {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err == nil {
			err = writeKey(o.CAKey, key, false)
		}
	}
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	now := o.now()
	lifetime := o.Lifetime
	if lifetime == 0 {
		lifetime = DefaultCALifetime
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Holocron CA", Organization: []string{caOrg}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("sign CA certificate: %w", err)
	}
	return writeCert(filepath.Join(o.CertsDir, CAFile), der, o.Overwrite)
}

// CreateNode makes node.crt and node.key in CertsDir for the node called
// name, reachable at hosts (DNS names or IP addresses, for the peer and
// client listeners), signed by the CA.
func CreateNode(o Options, name string, hosts []string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(hosts) == 0 {
		return errors.New("create-node needs at least one --host the node is reached at")
	}
	return create(o, "node", name, hosts, nodeOrg,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NodeCertFile, NodeKeyFile)
}

// CreateClient makes client.USER.crt and client.USER.key in CertsDir, for
// operators' tools (backup, restore) to present to a node.
func CreateClient(o Options, user string) error {
	if err := checkName(user); err != nil {
		return err
	}
	return create(o, "client", user, nil, clientOrg,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, ClientCertFile(user), ClientKeyFile(user))
}

func create(o Options, kind, name string, hosts []string, org string, usage []x509.ExtKeyUsage, certFile, keyFile string) error {
	if o.CertsDir == "" || o.CAKey == "" {
		return fmt.Errorf("create-%s needs a certs directory and the CA key", kind)
	}
	caCert, err := LoadCA(o.CertsDir)
	if err != nil {
		return err
	}
	caKey, err := loadKey(o.CAKey)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	if !caCert.PublicKey.(*ecdsa.PublicKey).Equal(&caKey.PublicKey) {
		return fmt.Errorf("CA key %s does not belong to %s", o.CAKey, filepath.Join(o.CertsDir, CAFile))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := o.now()
	lifetime := o.Lifetime
	if lifetime == 0 {
		lifetime = DefaultCertLifetime
	}
	if end := now.Add(lifetime); end.After(caCert.NotAfter) {
		return fmt.Errorf("a %s certificate valid until %s would outlive the CA (valid until %s): shorten --lifetime or renew the CA",
			kind, end.Format(time.DateOnly), caCert.NotAfter.Format(time.DateOnly))
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{org}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		URIs:         []*url.URL{{Scheme: identityScheme, Host: kind, Path: "/" + name}},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sign %s certificate: %w", kind, err)
	}
	if err := writeKey(filepath.Join(o.CertsDir, keyFile), key, o.Overwrite); err != nil {
		return err
	}
	return writeCert(filepath.Join(o.CertsDir, certFile), der, o.Overwrite)
}

// checkName keeps names to what a node name or user may be: they end up in
// URIs, file names and logs.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name %q: 1 to 64 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("name %q: only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// NodeName returns the name of the node a verified certificate was issued
// to, or an error when it is not a node certificate (a client's, or one
// made by other tools): only a node certificate may speak for a node.
func NodeName(cert *x509.Certificate) (string, error) {
	return identity(cert, "node", nodeOrg)
}

// ClientName returns the user of a verified client certificate.
func ClientName(cert *x509.Certificate) (string, error) {
	return identity(cert, "client", clientOrg)
}

func identity(cert *x509.Certificate, kind, org string) (string, error) {
	if len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != org {
		return "", fmt.Errorf("certificate %q is not a %s certificate (organization %q)", cert.Subject.CommonName, kind, cert.Subject.Organization)
	}
	for _, u := range cert.URIs {
		if u.Scheme == identityScheme && u.Host == kind {
			name := strings.TrimPrefix(u.Path, "/")
			if name != cert.Subject.CommonName {
				return "", fmt.Errorf("certificate names %q in its URI and %q as its common name", name, cert.Subject.CommonName)
			}
			return name, nil
		}
	}
	return "", fmt.Errorf("certificate %q carries no %s identity", cert.Subject.CommonName, kind)
}

// LoadCA reads ca.crt from dir.
func LoadCA(dir string) (*x509.Certificate, error) {
	certs, err := loadCerts(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	if !certs[0].IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, CAFile))
	}
	return certs[0], nil
}

// LoadCAPool reads every certificate in ca.crt into a pool: during a CA
// rotation the file holds the old and the new CA.
func LoadCAPool(dir string) (*x509.CertPool, error) {
	certs, err := loadCerts(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func loadCerts(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return out, nil
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", path)
	}
	return ek, nil
}

func writeKey(path string, key *ecdsa.PrivateKey, overwrite bool) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600, overwrite)
}

func writeCert(path string, der []byte, overwrite bool) error {
	return writePEM(path, "CERTIFICATE", der, 0o644, overwrite)
}

// writePEM writes one PEM block, whole or not at all (a temporary file
// renamed into place), refusing to replace a file unless overwrite.
func writePEM(path, typ string, der []byte, mode os.FileMode, overwrite bool) error {
	if !overwrite {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists (use --overwrite to replace it)", path)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: typ, Bytes: der}); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen: crypto/rand does not fail
	}
	return n
}

// Info describes a certificate file for `holocron cert list`.
type Info struct {
	Kind     string // "ca", "node", "client" or "other"
	Name     string // the node's or user's name; the CA's common name
	NotAfter time.Time
}

// Describe reads the first certificate of a file.
func Describe(path string) (Info, error) {
	cs, err := loadCerts(path)
	if err != nil {
		return Info{}, err
	}
	c := cs[0]
	info := Info{Kind: "other", Name: c.Subject.CommonName, NotAfter: c.NotAfter}
	switch {
	case c.IsCA:
		info.Kind = "ca"
	default:
		if n, err := NodeName(c); err == nil {
			info.Kind, info.Name = "node", n
		} else if n, err := ClientName(c); err == nil {
			info.Kind, info.Name = "client", n
		}
	}
	return info, nil
}
