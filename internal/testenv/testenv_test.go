package testenv

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoSkipOutsideTestenv keeps every skip in the module going through
// Skip, so that CI (HOLOCRON_NO_SKIP) can refuse it: a t.Skip written
// anywhere else would pass CI silently.
func TestNoSkipOutsideTestenv(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || filepath.Dir(path) == filepath.Join(root, "internal", "testenv") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
				switch sel.Sel.Name {
				case "Skip", "Skipf", "SkipNow":
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "testenv" {
						return true
					}
					found = append(found, fset.Position(call.Pos()).String())
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: skip without testenv.Skip (CI could not refuse it)", f)
	}
}

// TestSkipFailsWhenRefused runs a skipping test in a child process with and
// without NoSkipEnv: refused, the skip is a failure that names its reason.
func TestSkipFailsWhenRefused(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "" {
		Skip(t, "the child's reason")
		return
	}
	for _, tc := range []struct {
		refuse   bool
		wantFail bool
	}{{false, false}, {true, true}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipFailsWhenRefused$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", NoSkipEnv+"=")
		if tc.refuse {
			cmd.Env = append(cmd.Env, NoSkipEnv+"=1")
		}
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Fatalf("refuse=%v: failed=%v, want %v\n%s", tc.refuse, failed, tc.wantFail, out)
		}
		if !strings.Contains(string(out), "the child's reason") {
			t.Fatalf("refuse=%v: output does not name the reason:\n%s", tc.refuse, out)
		}
		want := "--- SKIP"
		if tc.wantFail {
			want = "--- FAIL"
		}
		if !strings.Contains(string(out), want) {
			t.Fatalf("refuse=%v: output lacks %q:\n%s", tc.refuse, want, out)
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestCIRunsTheREADMETestCommand: the README promises that .ci/run runs
// its test command exactly, and that CI refuses skips.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var cmd string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "go test ") {
			cmd, _, _ = strings.Cut(line, "#")
			cmd = strings.TrimSpace(cmd)
			break
		}
	}
	if cmd == "" {
		t.Fatal("README.md has no line starting with the test command (go test …)")
	}
	lines := strings.Split(string(ci), "\n")
	found := false
	for _, l := range lines {
		found = found || strings.TrimSpace(l) == cmd
	}
	if !found {
		t.Errorf(".ci/run has no line that is exactly the README's test command %q", cmd)
	}
	if !strings.Contains(string(ci), "export "+NoSkipEnv+"=1") {
		t.Errorf(".ci/run does not export %s=1", NoSkipEnv)
	}
}
