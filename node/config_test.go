package node

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// historyFlag is a type's own flag (Types.Flags), as the shipped chat
// declares -history-limit: it gets the same environment twin and config
// file key as serve's own flags.
func historyFlag(limit *int) func(*flag.FlagSet) {
	return func(fs *flag.FlagSet) { fs.IntVar(limit, "history-limit", 1000, "chat messages kept per room") }
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "holocron.yaml")
	if err := os.WriteFile(file, []byte("http: 127.0.0.1:9001\nhistory-limit: 50\njoin: [a:1, b:2]\nrate-limit: 7\ninsecure: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantHTTP    string
		wantHistory int
		wantJoin    string
	}{
		{"file only", []string{"-config", file}, nil, "127.0.0.1:9001", 50, "a:1,b:2"},
		{"file from env", nil, map[string]string{"HOLOCRON_CONFIG": file}, "127.0.0.1:9001", 50, "a:1,b:2"},
		{"env over file", []string{"--config=" + file}, map[string]string{"HOLOCRON_HTTP": ":9002"}, ":9002", 50, "a:1,b:2"},
		{"flag over env", []string{"-config", file, "-http", ":9003", "-history-limit", "9"}, map[string]string{"HOLOCRON_HTTP": ":9002"}, ":9003", 9, "a:1,b:2"},
		{"no file", []string{"-join", "c:3", "-insecure"}, nil, ":8080", 1000, "c:3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var history int
			cfg, err := ParseConfig(tc.args, env(tc.env), historyFlag(&history))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTPAddr != tc.wantHTTP || history != tc.wantHistory || cfg.Join != tc.wantJoin {
				t.Fatalf("http %q history %d join %q; want %q %d %q", cfg.HTTPAddr, history, cfg.Join, tc.wantHTTP, tc.wantHistory, tc.wantJoin)
			}
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"unknown key":   "htp: :1\n",
		"bad value":     "history-limit: lots\n",
		"not a map":     "- a\n- b\n",
		"config inside": "config: other.yaml\n",
	} {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(file, []byte(content), 0o644)
		var history int
		if _, err := ParseConfig([]string{"-config", file}, func(string) string { return "" }, historyFlag(&history)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseConfig([]string{"-config", filepath.Join(dir, "missing.yaml")}, func(string) string { return "" }, nil); err == nil {
		t.Error("missing file: no error")
	}
}

func TestPrintConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	env := func(k string) string {
		return map[string]string{"HOLOCRON_AUTH_SECRET": "hush", "HOLOCRON_HISTORY_LIMIT": "12"}[k]
	}
	var history int
	types := Types{Flags: historyFlag(&history)}
	if code := Main([]string{"serve", "-print-config", "-join", "x:1", "-insecure"}, &out, &errOut, env, types); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var printed map[string]string
	if err := yaml.Unmarshal(out.Bytes(), &printed); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out.String())
	}
	for k, want := range map[string]string{"history-limit": "12", "join": "x:1", "auth-secret": "<redacted>", "bind": ":7946", "http": ":8080", "peer": ":7947", "insecure": "true"} {
		if printed[k] != want {
			t.Errorf("%s = %q, want %q", k, printed[k], want)
		}
	}
	// What it prints loads back as a config file (secrets aside).
	delete(printed, "auth-secret")
	raw, _ := yaml.Marshal(printed)
	file := filepath.Join(t.TempDir(), "round.yaml")
	os.WriteFile(file, raw, 0o644)
	history = 0
	cfg, err := ParseConfig([]string{"-config", file}, func(string) string { return "" }, historyFlag(&history))
	if err != nil || history != 12 || cfg.Join != "x:1" {
		t.Fatalf("printed config does not load back: %+v %v", cfg, err)
	}
}
