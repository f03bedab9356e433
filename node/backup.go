package node

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/storage"
)

// Backups are gzipped tar archives of a Pebble checkpoint: the files of
// the data directory's pebble/ subdirectory, at one consistent instant.

// serveBackup answers POST /admin/backup with the archive of a checkpoint
// taken now, while the node keeps serving.
func serveBackup(store *storage.PebbleStore, dataDir string, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tmp, err := os.MkdirTemp(dataDir, ".backup-")
		if err != nil {
			protocol.WriteHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "backup: %v", err))
			return
		}
		defer os.RemoveAll(tmp)
		cp := filepath.Join(tmp, "pebble")
		start := time.Now()
		if err := store.Checkpoint(cp); err != nil {
			protocol.WriteHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "backup: %v", err))
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="holocron-backup.tar.gz"`)
		n, err := writeArchive(w, cp)
		if err != nil {
			log.Error("backup stream failed", "err", err)
			return
		}
		log.Info("backup sent", "files", n, "took", time.Since(start))
	}
}

// writeArchive writes dir's regular files as a gzipped tar.
func writeArchive(w io.Writer, dir string) (int, error) {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return err
		}
		files++
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	return files, err
}

// restoreArchive unpacks a node backup's tar stream (already gunzipped)
// into dir/pebble. dir must be empty or absent: a restore never mixes with
// existing data.
func restoreArchive(r io.Reader, dir string) (int, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return 0, fmt.Errorf("data directory %s is not empty", dir)
	}
	dst := filepath.Join(dir, "pebble")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	tr := tar.NewReader(r)
	files := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return files, fmt.Errorf("read backup: %w", err)
		}
		name := filepath.FromSlash(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !filepath.IsLocal(name) {
			return files, fmt.Errorf("backup holds an unexpected entry %q", hdr.Name)
		}
		path := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return files, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return files, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return files, fmt.Errorf("write %s: %w", path, err)
		}
		files++
	}
	if files == 0 {
		return 0, errors.New("backup is empty")
	}
	return files, nil
}

// backupCommand is `holocron backup -from URL -out FILE [-scope node|cluster]`.
// Scope node asks one node for a Pebble checkpoint of its whole store (a
// single node's backup; restored with -data). Scope cluster records every
// object through its owner (see backup_objects.go): for a cluster, and
// restorable into a cluster (-to) or an empty single-node data dir (-data).
func backupCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "http://127.0.0.1:8080", "base URL of the node to back up (any node of a cluster)")
	out := fs.String("out", "", "file to write the backup to (required)")
	scope := fs.String("scope", "node", "node: a checkpoint of this node's store; cluster: every object through its owner")
	adminToken := secret{name: "admin-token"}
	adminToken.declare(fs, getenv(envName("admin-token")), "the nodes' -admin-token, if they have one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := adminToken.resolve()
	if err != nil {
		fmt.Fprintln(stderr, "holocron backup:", err)
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "holocron backup: -out is required")
		return 2
	}
	if *scope != "node" && *scope != "cluster" {
		fmt.Fprintf(stderr, "holocron backup: -scope must be node or cluster, not %q\n", *scope)
		return 2
	}
	base := strings.TrimRight(*from, "/")
	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		fmt.Fprintf(stderr, "holocron backup: %v\n", err)
		return 1
	}
	var what string
	if *scope == "cluster" {
		c := &adminClient{base: base, token: token, http: http.DefaultClient, patience: time.Minute}
		var n int
		n, err = backupObjects(context.Background(), c, f)
		what = fmt.Sprintf("%d objects", n)
	} else {
		var n int64
		n, err = backupNode(base, token, f)
		what = fmt.Sprintf("%d bytes", n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		fmt.Fprintf(stderr, "holocron backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s backup of %s written to %s (%s)\n", *scope, *from, *out, what)
	return 0
}

// backupNode streams one node's checkpoint archive into w.
func backupNode(base, token string, w io.Writer) (int64, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/admin/backup", nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return io.Copy(w, resp.Body)
}

// restoreCommand is `holocron restore -in FILE (-data DIR | -to URL)`.
func restoreCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "backup file (required)")
	data := fs.String("data", "./data", "empty data directory to restore into (the node must not be running)")
	to := fs.String("to", "", "base URL of a running node or cluster to restore a cluster backup into, instead of -data")
	adminToken := secret{name: "admin-token"}
	adminToken.declare(fs, getenv(envName("admin-token")), "with -to: the nodes' -admin-token, if they have one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := adminToken.resolve()
	if err != nil {
		fmt.Fprintln(stderr, "holocron restore:", err)
		return 2
	}
	if *in == "" {
		fmt.Fprintln(stderr, "holocron restore: -in is required")
		return 2
	}
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintf(stderr, "holocron restore: %v\n", err)
		return 2
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		fmt.Fprintf(stderr, "holocron restore: not a holocron backup: %v\n", err)
		return 1
	}
	br := bufio.NewReader(gz)
	if !isObjectsBackup(br) {
		if *to != "" {
			fmt.Fprintln(stderr, "holocron restore: -to takes a cluster backup (holocron backup -scope cluster); this is a node backup, restore it with -data")
			return 2
		}
		n, err := restoreArchive(br, *data)
		if err != nil {
			fmt.Fprintf(stderr, "holocron restore: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "restored %d files into %s; start it with: holocron serve -data %s\n", n, *data, *data)
		return 0
	}
	or, err := openObjects(br)
	if err != nil {
		fmt.Fprintf(stderr, "holocron restore: %v\n", err)
		return 1
	}
	var n int
	if *to != "" {
		c := &adminClient{base: strings.TrimRight(*to, "/"), token: token, http: http.DefaultClient, patience: time.Minute}
		n, err = restoreObjectsTo(context.Background(), c, or)
	} else {
		n, err = restoreObjectsToDir(or, *data)
	}
	if err != nil {
		fmt.Fprintf(stderr, "holocron restore: %v (%d objects restored before it)\n", err, n)
		return 1
	}
	if *to != "" {
		fmt.Fprintf(stdout, "restored %d objects into %s\n", n, *to)
	} else {
		fmt.Fprintf(stdout, "restored %d objects into %s; start it with: holocron serve -data %s\n", n, *data, *data)
	}
	return 0
}
