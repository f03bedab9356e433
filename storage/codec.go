package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// batchCodecVersion is the first byte of an encoded Batch, so that the
// format can change without misreading an old Raft log.
const batchCodecVersion = 1

const (
	flagMeta = 1 << iota
	flagAlarmSet
	flagAlarmDelete
	flagForget
	flagWritten
)

// ErrBadBatch is returned by DecodeBatch for bytes that are not a Batch.
var ErrBadBatch = errors.New("storage: malformed batch encoding")

// AppendBatch appends the binary encoding of b to dst. A replicated store
// uses it to carry one object event's writes in one Raft proposal.
func AppendBatch(dst []byte, b *Batch) []byte {
	dst = append(dst, batchCodecVersion)
	dst = append(dst, b.Object[:]...)
	var flags byte
	if b.Meta != nil {
		flags |= flagMeta
	}
	if b.Alarm.Set {
		flags |= flagAlarmSet
	}
	if b.Alarm.Delete {
		flags |= flagAlarmDelete
	}
	if b.Forget {
		flags |= flagForget
	}
	if !b.Written.IsZero() {
		flags |= flagWritten
	}
	dst = append(dst, flags)
	if b.Meta != nil {
		dst = appendString(dst, b.Meta.Class)
		dst = appendString(dst, b.Meta.Name)
	}
	if b.Alarm.Set {
		dst = binary.BigEndian.AppendUint64(dst, uint64(b.Alarm.At.UnixNano()))
	}
	if !b.Written.IsZero() {
		dst = binary.BigEndian.AppendUint64(dst, uint64(b.Written.UnixNano()))
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Ops)))
	for _, op := range b.Ops {
		dst = append(dst, byte(op.Kind))
		dst = appendString(dst, op.Key)
		dst = binary.AppendUvarint(dst, uint64(len(op.Value)))
		dst = append(dst, op.Value...)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeBatch parses what AppendBatch wrote. Values alias data.
func DecodeBatch(data []byte) (*Batch, error) {
	d := decoder{buf: data}
	if v := d.byte(); v != batchCodecVersion {
		return nil, fmt.Errorf("batch codec version %d: %w", v, ErrBadBatch)
	}
	b := &Batch{}
	copy(b.Object[:], d.bytes(len(b.Object)))
	flags := d.byte()
	if flags&flagMeta != 0 {
		b.Meta = &ObjectMeta{Class: string(d.lenBytes()), Name: string(d.lenBytes())}
	}
	if flags&flagAlarmSet != 0 {
		b.Alarm.Set = true
		b.Alarm.At = time.Unix(0, int64(binary.BigEndian.Uint64(d.bytes(8)))).UTC()
	}
	b.Alarm.Delete = flags&flagAlarmDelete != 0
	b.Forget = flags&flagForget != 0
	if flags&flagWritten != 0 {
		b.Written = time.Unix(0, int64(binary.BigEndian.Uint64(d.bytes(8)))).UTC()
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(data)) {
		d.err = ErrBadBatch
	}
	if d.err == nil && n > 0 {
		b.Ops = make([]Op, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		op := Op{Kind: OpKind(d.byte())}
		op.Key = string(d.lenBytes())
		op.Value = d.lenBytes()
		if op.Kind < OpPut || op.Kind > OpDeleteAll {
			d.err = ErrBadBatch
		}
		b.Ops = append(b.Ops, op)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = ErrBadBatch
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode batch: %w", d.err)
	}
	return b, nil
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.buf) {
		d.err = ErrBadBatch
		return make([]byte, max(n, 0))
	}
	out := d.buf[:n:n]
	d.buf = d.buf[n:]
	return out
}

func (d *decoder) byte() byte { return d.bytes(1)[0] }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = ErrBadBatch
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) lenBytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.err = ErrBadBatch
		return nil
	}
	return d.bytes(int(n))
}
