package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// maxBodyBytes bounds a REST response the client reads.
const maxBodyBytes = 16 << 20

// restNodes lists the nodes to try for a REST request: the one the
// WebSocket is connected to first (it is known to be up), then the rest of
// the rotation.
func (s *core) restNodes() []node {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodes := make([]node, 0, len(s.nodes.nodes))
	start := s.nodes.next
	for i := range s.nodes.nodes {
		n := s.nodes.nodes[(start+i)%len(s.nodes.nodes)]
		if n.addr == s.addr {
			nodes = append([]node{n}, nodes...)
		} else {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// rest sends one REST request (body, if not nil, as JSON) and decodes the
// answer into out. It moves on to the next node when a node cannot be
// reached or answers 503 unavailable (its object is moving); a POST is
// repeated only when it certainly did not arrive (the dial failed, or the
// node refused it as unavailable), so a room is never created twice by the
// client.
func (s *core) rest(ctx context.Context, method, path string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
	}
	var errs []error
	for _, n := range s.restNodes() {
		next, err := s.restOnce(ctx, n, method, path, data, out)
		if err == nil {
			return nil
		}
		err = fmt.Errorf("%s %s%s: %w", method, n.httpURL, path, err)
		if !next || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// restOnce tries one node; next says whether another node may be tried.
func (s *core) restOnce(ctx context.Context, n node, method, path string, data []byte, out any) (next bool, err error) {
	req, err := http.NewRequestWithContext(ctx, method, n.httpURL+path, bytes.NewReader(data))
	if err != nil {
		return false, err
	}
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.Token)
	}
	resp, err := s.httpc.Do(req)
	if err != nil {
		var op *net.OpError
		return method == http.MethodGet || (errors.As(err, &op) && op.Op == "dial"), err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return method == http.MethodGet, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 400 {
		return resp.StatusCode == http.StatusServiceUnavailable, httpError(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return false, fmt.Errorf("decode response: %w", err)
		}
	}
	return false, nil
}
