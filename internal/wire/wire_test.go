package wire

import (
	"errors"
	"testing"
)

var errBad = errors.New("bad")

func TestDecoderReadsWhatWasAppended(t *testing.T) {
	b := AppendBytes(nil, []byte("ab"))
	b = AppendString(b, "cde")
	b = append(b, 7)
	d := NewDecoder(b, errBad)
	if got := string(d.Bytes(10)); got != "ab" {
		t.Fatalf("first field %q", got)
	}
	if got := string(d.Bytes(10)); got != "cde" {
		t.Fatalf("second field %q", got)
	}
	if got := d.Byte(); got != 7 || d.Err() != nil || d.Len() != 0 {
		t.Fatalf("byte %d, err %v, %d left", got, d.Err(), d.Len())
	}
}

// Every malformed read records the decoder's error and returns a zero
// value; none panics.
func TestDecoderRefusesMalformedInput(t *testing.T) {
	tests := []struct {
		name string
		read func(d *Decoder)
		in   []byte
	}{
		{"a byte from nothing", func(d *Decoder) { d.Byte() }, nil},
		{"a fixed field beyond the input", func(d *Decoder) { d.Fixed(8) }, []byte{1, 2}},
		{"a truncated uvarint", func(d *Decoder) { d.Uvarint() }, []byte{0x80}},
		{"a string longer than the input", func(d *Decoder) { d.Bytes(100) }, []byte{5, 'a'}},
		{"a string over its bound", func(d *Decoder) { d.Bytes(2) }, AppendString(nil, "abc")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(tt.in, errBad)
			tt.read(d)
			if !errors.Is(d.Err(), errBad) {
				t.Fatalf("err %v, want the decoder's own", d.Err())
			}
			if d.Uvarint() != 0 || d.Bytes(10) != nil {
				t.Fatal("a read after the error returned something")
			}
		})
	}
}
