package runtime_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/runtime"
)

// stalledRequest opens a raw connection to the object and sends a request
// whose body never arrives whole: head says how the body is framed, part
// is the part sent. The connection stays open until the test ends.
func stalledRequest(t *testing.T, addr, path, head, part string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n%s", path, head, part)
	return c
}

// TestHalfSentBodyHoldsOnlyItsOwnRequest: a client that sends part of a
// body (sized or chunked) does not stall the object: while its request
// waits, other clients' requests to the same object are answered; it is
// answered 408 request_timeout once RequestBodyTimeout has passed, and a
// body over MaxRequestBody gets 413 too_large. Neither reaches the object.
func TestHalfSentBodyHoldsOnlyItsOwnRequest(t *testing.T) {
	const timeout = time.Second
	s := startCounter(t, t.TempDir(), nil, runtime.Options{RequestBodyTimeout: timeout, MaxRequestBody: 1 << 10})
	path := "/objects/Counter/body/"
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, tc := range []struct {
		name, head, part string
	}{
		{"sized", "Content-Length: 1000\r\n", "x"},
		{"chunked", "Transfer-Encoding: chunked\r\n", "1\r\nx\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stalled := stalledRequest(t, addr, path, tc.head, tc.part)
			// While it stalls, the object serves others: three POSTs.
			var n float64
			for range 3 {
				code, f := s.Do(http.MethodPost, path, nil)
				if code != http.StatusOK {
					t.Fatalf("POST while another request's body stalls: %d %v", code, f)
				}
				n = f["n"].(float64)
			}
			stalled.SetReadDeadline(time.Now().Add(10 * timeout))
			resp, err := http.ReadResponse(bufio.NewReader(stalled), nil)
			if err != nil {
				t.Fatalf("the stalled request got no answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("the stalled request: %s, want 408", resp.Status)
			}
			// It never reached the object.
			if _, f := s.Do(http.MethodGet, path, nil); f["n"].(float64) != n {
				t.Fatalf("count %v after the stalled POST, want %v: it reached the object", f["n"], n)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		_, f := s.Do(http.MethodGet, path, nil)
		for _, head := range []string{"Content-Length: 2048\r\n", "Transfer-Encoding: chunked\r\n"} {
			body := strings.Repeat("x", 2048)
			if strings.HasPrefix(head, "Transfer") {
				body = fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
			}
			c := stalledRequest(t, addr, path, head, body)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("%q body of 2 KiB over a 1 KiB limit: %s, want 413", head, resp.Status)
			}
		}
		if _, g := s.Do(http.MethodGet, path, nil); g["n"] != f["n"] {
			t.Fatalf("count %v after refused bodies, want %v", g["n"], f["n"])
		}
	})
}
