// Package wire reads and writes the length-prefixed binary encodings of
// Holocron's own formats (an object's batch in the Raft log, an edge
// session's messages): integers as uvarints, byte strings as their length
// and then the bytes. Its Decoder checks every bound and, on a malformed
// input, records an error rather than panicking, so that a decoder of
// untrusted bytes reads on and checks Err once at the end.
package wire

import "encoding/binary"

// AppendBytes appends b, length first.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendString appends s, length first.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decoder reads fields from a buffer. After the first malformed field,
// Err reports bad and every read returns zero values.
type Decoder struct {
	buf []byte
	bad error
	err error
}

// NewDecoder reads buf; bad is the error a malformed input reports.
func NewDecoder(buf []byte, bad error) *Decoder { return &Decoder{buf: buf, bad: bad} }

// Err is nil while every read fit, else the decoder's bad error.
func (d *Decoder) Err() error { return d.err }

// Fail marks the input malformed (a field's value is out of range).
func (d *Decoder) Fail() { d.err = d.bad }

// Len is how many bytes are left.
func (d *Decoder) Len() int { return len(d.buf) }

// Fixed reads n bytes (a fixed-size field, n small); on a short input it
// returns n zero bytes. The result aliases the buffer.
func (d *Decoder) Fixed(n int) []byte {
	if d.err != nil || n > len(d.buf) {
		d.err = d.bad
		return make([]byte, n)
	}
	out := d.buf[:n:n]
	d.buf = d.buf[n:]
	return out
}

// Byte reads one byte.
func (d *Decoder) Byte() byte { return d.Fixed(1)[0] }

// Uvarint reads a uvarint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = d.bad
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Bytes reads a byte string of at most max bytes. The result aliases the
// buffer.
func (d *Decoder) Bytes(max uint64) []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) || n > max {
		d.err = d.bad
		return nil
	}
	out := d.buf[:n:n]
	d.buf = d.buf[n:]
	return out
}
