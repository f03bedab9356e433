package node

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// secret is a flag pair -NAME and -NAME-file for one secret (the admin
// token, the auth secret). A value on the command line shows in ps and in
// shell history; one in a file (a Docker or Kubernetes secret, mode 0600)
// does not, which is how a secret should reach a production node. Both
// also read their environment twins, as every flag does.
type secret struct {
	name  string
	value string
	file  string
}

// declare adds the pair to fs, the value's default taken from def.
func (s *secret) declare(fs *flag.FlagSet, def, usage string) {
	fs.StringVar(&s.value, s.name, def, usage)
	fs.StringVar(&s.file, s.name+"-file", "", "file holding -"+s.name+" (surrounding white space ignored); keeps the secret out of ps and shell history")
}

// resolve returns the secret: the flag's value, or the file's content.
// Both set is an error, as is a file that cannot be read or holds nothing:
// starting with no secret because a file was empty would open what the
// operator meant to close.
func (s *secret) resolve() (string, error) {
	if s.file == "" {
		return s.value, nil
	}
	if s.value != "" {
		return "", fmt.Errorf("-%s and -%s-file are both set: choose one", s.name, s.name)
	}
	raw, err := os.ReadFile(s.file)
	if err != nil {
		return "", fmt.Errorf("-%s-file: %w", s.name, err)
	}
	v := strings.TrimSpace(string(raw))
	if v == "" {
		return "", fmt.Errorf("-%s-file %s is empty", s.name, s.file)
	}
	return v, nil
}
