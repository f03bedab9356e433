package node

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/storage"
)

// A cluster backup ("-scope cluster") records every object as its owner
// holds it, one JSON line per object in a gzip stream:
//
//	{"format":"holocron-objects","version":1,"taken":...,"from":...}
//	{"id":"<hex>","class":"ChatLobby","name":"main","alarm":...,"data":[{"key":"k","value":"<base64>"}]}
//	...
//	{"end":true,"objects":N}
//
// Each object is read from one snapshot of its owner's store, so it is
// consistent in itself and holds every write acknowledged before the backup
// reached it; objects are independent, so nothing is promised across them.
// The trailer tells a complete file from a truncated one.
const objectsFormat = "holocron-objects"

// objectsHeader is the first line of a cluster backup.
type objectsHeader struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Taken   time.Time `json:"taken"`
	From    string    `json:"from"`
}

// objectsTrailer is the last line of a complete cluster backup.
type objectsTrailer struct {
	End     bool `json:"end"`
	Objects int  `json:"objects"`
}

// objectRecord is one object in a cluster backup, and the body of
// GET /admin/export/{id} and POST /admin/import/{id}.
type objectRecord struct {
	ID        string       `json:"id"`
	Class     string       `json:"class"`
	Name      string       `json:"name,omitempty"`
	Alarm     *time.Time   `json:"alarm,omitempty"`
	LastWrite *time.Time   `json:"lastWrite,omitempty"`
	Data      []recordData `json:"data"`
}

type recordData struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

func recordOf(exp storage.ObjectExport) objectRecord {
	rec := objectRecord{ID: hex.EncodeToString(exp.ID[:]), Class: exp.Meta.Class, Name: exp.Meta.Name,
		Alarm: exp.Alarm, LastWrite: exp.LastWrite, Data: make([]recordData, len(exp.Data))}
	for i, kv := range exp.Data {
		rec.Data[i] = recordData{Key: kv.Key, Value: kv.Value}
	}
	return rec
}

func (rec *objectRecord) export() (storage.ObjectExport, error) {
	id, err := runtime.ParseID(rec.ID)
	if err != nil {
		return storage.ObjectExport{}, fmt.Errorf("object record: id: %w", err)
	}
	if rec.Class == "" {
		return storage.ObjectExport{}, fmt.Errorf("object record %s: no class", rec.ID)
	}
	exp := storage.ObjectExport{ID: storage.ObjectID(id), Meta: storage.ObjectMeta{Class: rec.Class, Name: rec.Name},
		Alarm: rec.Alarm, LastWrite: rec.LastWrite, Data: make([]storage.KV, len(rec.Data))}
	for i, d := range rec.Data {
		if err := storage.CheckKey(d.Key); err != nil {
			return storage.ObjectExport{}, fmt.Errorf("object record %s: %w", rec.ID, err)
		}
		if err := storage.CheckValue(d.Value); err != nil {
			return storage.ObjectExport{}, fmt.Errorf("object record %s: key %q: %w", rec.ID, d.Key, err)
		}
		exp.Data[i] = storage.KV{Key: d.Key, Value: d.Value}
	}
	return exp, nil
}

// objectByID resolves {id}; ok false means it was answered (a malformed
// id).
func (a *objectsAdmin) objectByID(w http.ResponseWriter, r *http.Request) (runtime.ID, bool) {
	id, err := runtime.ParseID(r.PathValue("id"))
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "id: %v", err))
		return id, false
	}
	return id, true
}

// serveExport answers GET /admin/export/{id} on the object's owner with
// its whole state read from one snapshot, for cluster backups.
func (a *objectsAdmin) serveExport(w http.ResponseWriter, r *http.Request) {
	id, ok := a.objectByID(w, r)
	if !ok {
		return
	}
	exp, ok, err := a.store.ExportObject(storage.ObjectID(id))
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "%v", err))
		return
	}
	if !ok {
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "object %s has no stored state", id))
		return
	}
	protocol.WriteJSON(w, http.StatusOK, recordOf(exp))
}

// maxImportBytes bounds one imported object record.
const maxImportBytes = 1 << 30

// serveImport answers POST /admin/import/{id} on the object's owner: the
// object's state is replaced by the record's (replicated, in a cluster).
func (a *objectsAdmin) serveImport(w http.ResponseWriter, r *http.Request) {
	id, ok := a.objectByID(w, r)
	if !ok {
		return
	}
	var rec objectRecord
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxImportBytes)).Decode(&rec); err != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidJSON, "object record: %v", err))
		return
	}
	exp, err := rec.export()
	if err == nil && runtime.ID(exp.ID) != id {
		err = fmt.Errorf("the record is of object %s, not %s", rec.ID, id)
	}
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "%v", err))
		return
	}
	ns, err := a.rt.Namespace(rec.Class)
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "unknown object class %q", rec.Class))
		return
	}
	if err := ns.Restore(r.Context(), exp); err != nil {
		protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "%v", err))
		return
	}
	protocol.WriteJSON(w, http.StatusOK, map[string]any{"id": id.String(), "restored": true, "keys": len(exp.Data)})
}

// adminClient talks to a node's admin API for the backup and restore
// commands, retrying what a cluster answers while an object moves.
type adminClient struct {
	base  string
	token string
	http  *http.Client
	// patience bounds the retries of one request.
	patience time.Duration
}

// do sends one request and returns the response body of a 2xx answer.
// 503s, 502s and connection errors are retried (honouring Retry-After)
// until patience runs out; a 404 is returned as errNotFound.
func (c *adminClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	deadline := time.Now().Add(c.patience)
	delay := 100 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		var retry error
		resp, err := c.http.Do(req)
		if err != nil {
			retry = err
		} else {
			data, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case rerr != nil:
				retry = rerr
			case resp.StatusCode/100 == 2:
				return data, nil
			case resp.StatusCode == http.StatusNotFound:
				return nil, fmt.Errorf("%s %s: %w", method, path, errNotFound)
			case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway:
				retry = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
					delay = max(delay, time.Duration(s)*time.Second)
				}
			default:
				return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
			}
		}
		if time.Now().Add(delay).After(deadline) {
			return nil, fmt.Errorf("%s %s: gave up after %v: %w", method, path, c.patience, retry)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		delay = min(2*delay, 2*time.Second)
	}
}

var errNotFound = errors.New("not found")

// backupObjects writes a cluster backup of every object the cluster (or
// single node) at c.base holds to w and returns how many it wrote.
func backupObjects(ctx context.Context, c *adminClient, w io.Writer) (int, error) {
	gz := gzip.NewWriter(w)
	enc := json.NewEncoder(gz)
	if err := enc.Encode(objectsHeader{Format: objectsFormat, Version: 1, Taken: time.Now().UTC(), From: c.base}); err != nil {
		return 0, err
	}
	// Every replica's list, merged: an object is listed as long as one of
	// its replicas is up, whoever leads its partition right now.
	n, after := 0, ""
	for {
		data, err := c.do(ctx, http.MethodGet, "/admin/objects?replicas=1&limit=1000&after="+url.QueryEscape(after), nil)
		if err != nil {
			return n, fmt.Errorf("list objects: %w", err)
		}
		var page objectPage
		if err := json.Unmarshal(data, &page); err != nil {
			return n, fmt.Errorf("list objects: %w", err)
		}
		for _, o := range page.Objects {
			data, err := c.do(ctx, http.MethodGet, "/admin/export/"+o.ID, nil)
			if errors.Is(err, errNotFound) {
				continue // deleted since it was listed
			}
			if err != nil {
				return n, fmt.Errorf("export %s %s: %w", o.Class, o.ID, err)
			}
			if _, err := gz.Write(append(bytes.TrimSpace(data), '\n')); err != nil {
				return n, err
			}
			n++
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if err := enc.Encode(objectsTrailer{End: true, Objects: n}); err != nil {
		return n, err
	}
	return n, gz.Close()
}

// objectsReader reads a cluster backup record by record.
type objectsReader struct {
	sc      *bufio.Scanner
	header  objectsHeader
	records int
}

// openObjects checks br holds a cluster backup (after gunzip) and reads
// its header.
func openObjects(r io.Reader) (*objectsReader, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxImportBytes)
	or := &objectsReader{sc: sc}
	if !sc.Scan() {
		return nil, fmt.Errorf("not a holocron cluster backup: %v", cmpErr(sc.Err(), io.ErrUnexpectedEOF))
	}
	if err := json.Unmarshal(sc.Bytes(), &or.header); err != nil || or.header.Format != objectsFormat {
		return nil, errors.New("not a holocron cluster backup")
	}
	if or.header.Version != 1 {
		return nil, fmt.Errorf("cluster backup version %d is not supported", or.header.Version)
	}
	return or, nil
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// next returns the next record; io.EOF after a complete file's trailer.
func (or *objectsReader) next() (*objectRecord, []byte, error) {
	if !or.sc.Scan() {
		return nil, nil, fmt.Errorf("cluster backup is truncated after %d objects: %w", or.records, cmpErr(or.sc.Err(), io.ErrUnexpectedEOF))
	}
	line := or.sc.Bytes()
	var probe struct {
		End     bool `json:"end"`
		Objects int  `json:"objects"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, nil, fmt.Errorf("cluster backup record %d: %w", or.records+1, err)
	}
	if probe.End {
		if probe.Objects != or.records {
			return nil, nil, fmt.Errorf("cluster backup says %d objects but holds %d", probe.Objects, or.records)
		}
		return nil, nil, io.EOF
	}
	var rec objectRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, nil, fmt.Errorf("cluster backup record %d: %w", or.records+1, err)
	}
	or.records++
	return &rec, line, nil
}

// restoreObjectsTo loads a cluster backup into a running cluster (or node)
// through its admin API: each object is replaced on its owner.
func restoreObjectsTo(ctx context.Context, c *adminClient, or *objectsReader) (int, error) {
	n := 0
	for {
		rec, line, err := or.next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if _, err := c.do(ctx, http.MethodPost, "/admin/import/"+rec.ID, line); err != nil {
			return n, fmt.Errorf("import %s %s: %w", rec.Class, rec.ID, err)
		}
		n++
	}
}

// restoreObjectsToDir loads a cluster backup into an empty data directory
// for a single node.
func restoreObjectsToDir(or *objectsReader, dir string) (int, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return 0, fmt.Errorf("data directory %s is not empty", dir)
	}
	store, err := storage.OpenPebble(filepath.Join(dir, "pebble"), storage.PebbleOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		rec, _, err := or.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			var exp storage.ObjectExport
			if exp, err = rec.export(); err == nil {
				for _, b := range storage.RestoreBatches(exp, 4<<20, time.Now()) {
					if err = commitSync(store, b); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			store.Close()
			return n, err
		}
		n++
	}
	return n, store.Close()
}

// commitSync commits b and waits until it is durable.
func commitSync(s storage.Store, b *storage.Batch) error {
	done := make(chan error, 1)
	s.Commit(b, func(err error) { done <- err })
	return <-done
}

// isObjectsBackup reports whether the gunzipped stream br starts like a
// cluster backup (a JSON line) rather than a node backup (a tar archive).
func isObjectsBackup(br *bufio.Reader) bool {
	head, _ := br.Peek(len(`{"format":"` + objectsFormat))
	return strings.HasPrefix(string(head), `{"format":"`+objectsFormat)
}
