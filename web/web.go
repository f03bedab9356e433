// Package web is what a person sees of Holocron: the demo app at /, the
// JavaScript client module at /holocron.js and the operator dashboard at
// /admin, all embedded in the binary (no build step, no files to deploy).
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Paths lists the URL paths Handler serves, for mounting on a mux.
var Paths = []string{"/{$}", "/holocron.js", "/admin", "/assets/"}

// Handler serves the embedded files: / → index.html, /admin → admin.html,
// /holocron.js and /assets/… as they are.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	fileServer := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case "/":
			http.ServeFileFS(w, r, static, "index.html")
		case "/admin":
			http.ServeFileFS(w, r, static, "admin.html")
		default:
			fileServer.ServeHTTP(w, r)
		}
	})
}
