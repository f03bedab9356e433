package node

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/certs"
)

const certUsage = `usage: holocron cert <command> [flags]

Certificates for a secure cluster (CockroachDB's layout): one CA per
cluster, its key kept off the nodes; each node's certs directory holds
ca.crt, node.crt and node.key; client.USER.crt/.key are for operators' tools.

commands:
  create-ca      --certs-dir DIR --ca-key FILE     the cluster's CA (ca.crt; the key at FILE)
  create-node    NAME --host H[,H…] --certs-dir DIR --ca-key FILE
                                                   node.crt/node.key for node NAME, reached at the hosts
  create-client  USER --certs-dir DIR --ca-key FILE  client.USER.crt/.key
  list           --certs-dir DIR                   what a certs directory holds, with expiry
  create-gossip-key FILE                           a new gossip key (base64, 32 bytes) in FILE, mode 0600;
                                                   every node's -gossip-key-file holds the same keys

flags of the create commands: --lifetime (default 10y for the CA, 5y for
the others; never past the CA's), --overwrite (replace existing files).
`

// certCommand runs `holocron cert …`.
func certCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprint(stdout, certUsage)
		return 0
	}
	fs := flag.NewFlagSet("cert "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("certs-dir", "certs", "the certs directory")
	caKey := fs.String("ca-key", "", "the CA's private key file (keep it off the nodes)")
	lifetime := fs.Duration("lifetime", 0, "validity (default: 10y CA, 5y others)")
	overwrite := fs.Bool("overwrite", false, "replace existing files")
	var hosts []string
	if sub == "create-node" {
		fs.Func("host", "a DNS name or IP address the node is reached at (repeat, or comma-separate)", func(v string) error {
			for h := range strings.SplitSeq(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					hosts = append(hosts, h)
				}
			}
			return nil
		})
	}
	// The name may come before or after the flags.
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "holocron cert %s: unexpected arguments %q\n", sub, fs.Args())
		return 2
	}
	o := certs.Options{CertsDir: *dir, CAKey: *caKey, Lifetime: *lifetime, Overwrite: *overwrite}
	var err error
	switch sub {
	case "create-ca":
		err = certs.CreateCA(o)
	case "create-node":
		if name == "" {
			err = errors.New("the node's name is required (holocron cert create-node NAME --host …)")
			break
		}
		err = certs.CreateNode(o, name, hosts)
	case "create-client":
		if name == "" {
			err = errors.New("the user is required (holocron cert create-client USER)")
			break
		}
		err = certs.CreateClient(o, name)
	case "list":
		err = listCerts(stdout, *dir)
	case "create-gossip-key":
		if name == "" {
			err = errors.New("the key file is required (holocron cert create-gossip-key FILE)")
			break
		}
		err = writeGossipKey(name, *overwrite)
	default:
		fmt.Fprintf(stderr, "holocron cert: unknown command %q\n%s", sub, certUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "holocron cert %s: %v\n", sub, err)
		return 1
	}
	return 0
}

// writeGossipKey writes a fresh gossip key to path, refusing to replace a
// file unless overwrite.
func writeGossipKey(path string, overwrite bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists (use --overwrite to replace it; to rotate, add a key as a new line instead)", path)
	}
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, cluster.NewGossipKey()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// listCerts prints one line per certificate file in dir.
func listCerts(w io.Writer, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no certificates in %s", dir)
	}
	sort.Strings(files)
	for _, f := range files {
		info, err := certs.Describe(f)
		if err != nil {
			return err
		}
		left := time.Until(info.NotAfter).Round(time.Hour)
		fmt.Fprintf(w, "%-24s %-7s %-16s expires %s (in %s)\n", filepath.Base(f), info.Kind, info.Name, info.NotAfter.Format(time.DateOnly), left)
	}
	return nil
}
