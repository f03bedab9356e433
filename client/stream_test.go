package client

import (
	"slices"
	"testing"
	"time"
)

// step is one input to a stream: a live message or a history page.
type step struct {
	live string   // a new_message id, or
	page []string // a history page's ids
	more bool     // the page's hasMore
}

func msgs(ids ...string) []*NewMessage {
	out := make([]*NewMessage, len(ids))
	for i, id := range ids {
		out[i] = &NewMessage{Message: ChatMessage{ID: id}}
	}
	return out
}

func ids(ms []*NewMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Message.ID
	}
	return out
}

func TestStreamDeliversEachMessageOnceInOrder(t *testing.T) {
	tests := []struct {
		name     string
		last     string // where the stream starts
		steps    []step
		want     []string // delivered, in order
		wantHeld []string
		skipped  bool
	}{
		{name: "in order", steps: []step{{live: "001"}, {live: "002"}, {live: "003"}}, want: []string{"001", "002", "003"}},
		{name: "repeats dropped", steps: []step{{live: "001"}, {live: "002"}, {live: "002"}, {live: "001"}}, want: []string{"001", "002"}},
		{name: "after since", last: "004", steps: []step{{live: "004"}, {live: "005"}}, want: []string{"005"}},
		{
			name:     "gap holds later messages",
			last:     "001",
			steps:    []step{{live: "003"}, {live: "004"}},
			want:     []string{},
			wantHeld: []string{"003", "004"},
		},
		{
			name:  "fill closes the gap",
			last:  "001",
			steps: []step{{live: "003"}, {live: "004"}, {page: []string{"002", "003"}}},
			want:  []string{"002", "003", "004"},
		},
		{
			name:  "resume overlapping live messages",
			last:  "002",
			steps: []step{{live: "005"}, {page: []string{"003", "004", "005", "006"}}, {live: "006"}, {live: "007"}},
			want:  []string{"003", "004", "005", "006", "007"},
		},
		{
			name:  "pages with more",
			last:  "001",
			steps: []step{{page: []string{"002", "003"}, more: true}, {live: "006"}, {page: []string{"004", "005"}}},
			want:  []string{"002", "003", "004", "005", "006"},
		},
		{
			name:    "trimmed messages are skipped once a complete page shows them gone",
			last:    "001",
			steps:   []step{{live: "009"}, {page: []string{"007", "008", "009"}}},
			want:    []string{"007", "008", "009"},
			skipped: true,
		},
		{
			name:  "an incomplete page does not skip",
			last:  "001",
			steps: []step{{live: "009"}, {page: []string{"002"}, more: true}},
			want:  []string{"002"}, wantHeld: []string{"009"},
		},
		{name: "page of old messages", last: "005", steps: []step{{page: []string{"003", "004", "005", "006"}}}, want: []string{"006"}},
		{name: "no start: first message opens the stream", steps: []step{{live: "007"}, {live: "008"}}, want: []string{"007", "008"}},
		{name: "other id shapes in arrival order", steps: []step{{live: "b"}, {live: "c"}, {live: "b"}, {live: "a"}}, want: []string{"b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stream{last: tt.last}
			got := []string{}
			skipped := false
			for _, st := range tt.steps {
				if st.page != nil {
					out, sk := s.page(msgs(st.page...), st.more)
					got = append(got, ids(out)...)
					skipped = skipped || sk
				} else {
					got = append(got, ids(s.offer(msgs(st.live)[0]))...)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("delivered %v, want %v", got, tt.want)
			}
			if held := ids(s.held); !slices.Equal(held, tt.wantHeld) && len(held)+len(tt.wantHeld) > 0 {
				t.Errorf("held %v, want %v", held, tt.wantHeld)
			}
			if s.gap() != (len(tt.wantHeld) > 0) {
				t.Errorf("gap() = %v with %v held", s.gap(), s.held)
			}
			if skipped != tt.skipped {
				t.Errorf("skipped = %v, want %v", skipped, tt.skipped)
			}
		})
	}
}

func TestFollows(t *testing.T) {
	tests := []struct {
		prev, next string
		want       bool
	}{
		{"00000000000000000001", "00000000000000000002", true},
		{"00000000000000000009", "00000000000000000010", true},
		{"00000000000000000001", "00000000000000000003", false},
		{"00000000000000000002", "00000000000000000002", false},
		{"9", "10", true},    // widths differ: cannot tell, never wait
		{"abc", "abd", true}, // not decimal
		{"", "00000000000000000001", true},
	}
	for _, tt := range tests {
		if got := follows(tt.prev, tt.next); got != tt.want {
			t.Errorf("follows(%q, %q) = %v, want %v", tt.prev, tt.next, got, tt.want)
		}
	}
}

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond},
		{10, time.Second, 2 * time.Second},
		{1000, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			if d := backoff(tt.attempt, lo, hi); d < tt.min || d > tt.max {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.attempt, d, tt.min, tt.max)
			}
		}
	}
}

func TestParseNodes(t *testing.T) {
	tests := []struct {
		in      string
		ws, web string
		bad     bool
	}{
		{in: "127.0.0.1:8081", ws: "ws://127.0.0.1:8081", web: "http://127.0.0.1:8081"},
		{in: "http://node1:8080", ws: "ws://node1:8080", web: "http://node1:8080"},
		{in: "https://chat.example", ws: "wss://chat.example", web: "https://chat.example"},
		{in: "wss://chat.example:443", ws: "wss://chat.example:443", web: "https://chat.example:443"},
		{in: "ftp://x", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		n, err := parseNodes([]string{tt.in})
		if tt.bad {
			if err == nil {
				t.Errorf("parseNodes(%q) succeeded", tt.in)
			}
			continue
		}
		if err != nil || n[0].wsBase != tt.ws || n[0].httpURL != tt.web {
			t.Errorf("parseNodes(%q) = %+v, %v; want %s and %s", tt.in, n, err, tt.ws, tt.web)
		}
	}
}

func TestWithRequestID(t *testing.T) {
	got := string(withRequestID([]byte(`{"type":"ping"}`), "c7"))
	if got != `{"requestId":"c7","type":"ping"}` {
		t.Fatalf("withRequestID = %s", got)
	}
}
