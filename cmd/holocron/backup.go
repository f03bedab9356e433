package main

import (
	"archive/tar"
	"compress/gzip"
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

	"github.com/holocron-run/holocron/objects/protocol"
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

// restoreArchive unpacks an archive into dir/pebble. dir must be empty or
// absent: a restore never mixes with existing data.
func restoreArchive(r io.Reader, dir string) (int, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return 0, fmt.Errorf("data directory %s is not empty", dir)
	}
	dst := filepath.Join(dir, "pebble")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, fmt.Errorf("not a holocron backup: %w", err)
	}
	tr := tar.NewReader(gz)
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

// backupCommand is `holocron backup -from URL -out FILE`: it asks a running
// node for a consistent snapshot and saves it.
func backupCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "http://127.0.0.1:8080", "base URL of the node to back up")
	out := fs.String("out", "", "file to write the backup to (required)")
	token := fs.String("admin-token", getenv(envName("admin-token")), "the node's -admin-token, if it has one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "holocron backup: -out is required")
		return 2
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*from, "/")+"/admin/backup", nil)
	if err != nil {
		fmt.Fprintf(stderr, "holocron backup: %v\n", err)
		return 2
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "holocron backup: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "holocron backup: %s: %s\n", resp.Status, body)
		return 1
	}
	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		fmt.Fprintf(stderr, "holocron backup: %v\n", err)
		return 1
	}
	n, err := io.Copy(f, resp.Body)
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
	fmt.Fprintf(stdout, "backup of %s written to %s (%d bytes)\n", *from, *out, n)
	return 0
}

// restoreCommand is `holocron restore -in FILE -data DIR`.
func restoreCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "backup file (required)")
	data := fs.String("data", "./data", "empty data directory to restore into")
	if err := fs.Parse(args); err != nil {
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
	n, err := restoreArchive(f, *data)
	if err != nil {
		fmt.Fprintf(stderr, "holocron restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %d files into %s; start it with: holocron serve -data %s\n", n, *data, *data)
	return 0
}
