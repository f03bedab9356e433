package docs

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// guides are the Markdown files whose Go code must be quoted from source.
var guides = []string{"authoring.md"}

// update rewrites the guides' quotes from the source instead of failing:
// go test ./docs -update, after changing the example, then read the diff.
var update = flag.Bool("update", false, "rewrite the guides' quoted blocks from the example source")

// A guide quotes a region of a source file with a marker line directly
// before the fenced block:
//
//	<!-- quote: example/poll/poll.go#vote -->
//	```go
//	…the lines between "// region: vote" and "// endregion", without the
//	blank lines at either end and the indentation they share…
//	```
var quoteMarker = regexp.MustCompile(`^<!-- quote: (\S+)#(\S+) -->$`)

// region is the text between "// region: NAME" and "// endregion".
type region struct {
	file, name string
	text       string
	quoted     bool
}

// readRegions returns the regions of every Go file under dir, keyed by
// "file#name" with file relative to the docs directory.
func readRegions(dir string) (map[string]*region, error) {
	regions := map[string]*region{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var (
			open  *region
			lines []string
		)
		for i, line := range strings.Split(string(raw), "\n") {
			trimmed := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trimmed, "// region: "):
				if open != nil {
					return fmt.Errorf("%s:%d: region inside region %q", path, i+1, open.name)
				}
				open = &region{file: filepath.ToSlash(path), name: strings.TrimPrefix(trimmed, "// region: ")}
				lines = nil
			case trimmed == "// endregion":
				if open == nil {
					return fmt.Errorf("%s:%d: endregion without region", path, i+1)
				}
				open.text = strings.Join(dedent(trimBlank(lines)), "\n")
				key := open.file + "#" + open.name
				if regions[key] != nil {
					return fmt.Errorf("%s:%d: region %q defined twice", path, i+1, open.name)
				}
				regions[key] = open
				open = nil
			case open != nil:
				lines = append(lines, line)
			}
		}
		if open != nil {
			return fmt.Errorf("%s: region %q never ends", path, open.name)
		}
		return nil
	})
	return regions, err
}

// trimBlank drops the blank lines at both ends of a region: a region's
// markers stand apart from its code, so they join no doc comment.
func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// dedent removes the leading tabs all non-blank lines share, so a region
// inside a function reads in the guide as if it were at top level.
func dedent(lines []string) []string {
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "\t"))
		if common < 0 || n < common {
			common = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			l = l[common:]
		}
		out[i] = l
	}
	return out
}

// quote is one quoted block of a guide.
type quote struct {
	line     int // of the marker, from 1
	from, to int // the body's lines, as indexes from 0: [from, to)
	key      string
	text     string
}

// readQuotes returns a guide's quotes and fails on a Go block without one.
func readQuotes(path string) ([]quote, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		quotes []quote
		prev   string
		cur    *quote
		body   []string
		n      int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			cur.to = n - 1
			cur.text = strings.Join(body, "\n")
			quotes = append(quotes, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		case line == "```go":
			m := quoteMarker.FindStringSubmatch(prev)
			if m == nil {
				return nil, fmt.Errorf("%s:%d: Go block without a quote marker: every Go block must quote compiled code", path, n)
			}
			cur = &quote{line: n - 1, from: n, key: m[1] + "#" + m[2]}
			body = nil
		case quoteMarker.MatchString(prev):
			return nil, fmt.Errorf("%s:%d: quote marker not followed by a ```go block", path, n-1)
		}
		prev = line
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: quoted block never ends", path, cur.line)
	}
	return quotes, sc.Err()
}

func TestGuideQuotesAreTheExampleSource(t *testing.T) {
	regions, err := readRegions("example")
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) == 0 {
		t.Fatal("no regions under example/: the check would prove nothing")
	}
	for _, guide := range guides {
		quotes, err := readQuotes(guide)
		if err != nil {
			t.Fatal(err)
		}
		var stale []quote
		for _, q := range quotes {
			r := regions[q.key]
			if r == nil {
				t.Errorf("%s:%d quotes %s, which is no region", guide, q.line, q.key)
				continue
			}
			r.quoted = true
			if q.text == r.text {
				continue
			}
			stale = append(stale, q)
			if !*update {
				n, got, want := firstDiff(q.text, r.text)
				t.Errorf("%s:%d: the quote of %s differs from the source at its line %d:\nguide:  %q\nsource: %q\n(go test ./docs -update rewrites the quotes)", guide, q.line+1+n, q.key, n, got, want)
			}
		}
		if *update && len(stale) > 0 {
			if err := rewriteQuotes(guide, stale, regions); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rewrote %d quotes from the source", guide, len(stale))
		}
	}
	for key, r := range regions {
		if !r.quoted {
			t.Errorf("region %s is quoted by no guide: quote it or drop its markers", key)
		}
	}
}

// rewriteQuotes replaces the bodies of quotes in guide with their regions.
func rewriteQuotes(guide string, quotes []quote, regions map[string]*region) error {
	raw, err := os.ReadFile(guide)
	if err != nil {
		return err
	}
	lines := strings.Split(string(raw), "\n")
	for i := len(quotes) - 1; i >= 0; i-- { // from the end: indexes stay valid
		q := quotes[i]
		body := strings.Split(regions[q.key].text, "\n")
		lines = append(lines[:q.from], append(body, lines[q.to:]...)...)
	}
	return os.WriteFile(guide, []byte(strings.Join(lines, "\n")), 0o644)
}

// firstDiff returns the first line (from 1) where a and b differ, and
// that line of each ("" past the end).
func firstDiff(a, b string) (int, string, string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; ; i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			return i + 1, x, y
		}
	}
}

// link is a Markdown link target: [text](target).
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

func TestGuideLinksPointAtFilesThatExist(t *testing.T) {
	for _, guide := range guides {
		raw, err := os.ReadFile(guide)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(guide), target)); err != nil {
				t.Errorf("%s links to %s: %v", guide, m[1], err)
			}
		}
	}
}
