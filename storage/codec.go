package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/holocron-run/holocron/internal/wire"
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
		dst = wire.AppendString(dst, b.Meta.Class)
		dst = wire.AppendString(dst, b.Meta.Name)
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
		dst = wire.AppendString(dst, op.Key)
		dst = wire.AppendBytes(dst, op.Value)
	}
	return dst
}

// DecodeBatch parses what AppendBatch wrote. Values alias data.
func DecodeBatch(data []byte) (*Batch, error) {
	d := wire.NewDecoder(data, ErrBadBatch)
	if v := d.Byte(); v != batchCodecVersion {
		return nil, fmt.Errorf("batch codec version %d: %w", v, ErrBadBatch)
	}
	b := &Batch{}
	copy(b.Object[:], d.Fixed(len(b.Object)))
	flags := d.Byte()
	if flags&flagMeta != 0 {
		b.Meta = &ObjectMeta{Class: string(d.Bytes(math.MaxUint64)), Name: string(d.Bytes(math.MaxUint64))}
	}
	if flags&flagAlarmSet != 0 {
		b.Alarm.Set = true
		b.Alarm.At = time.Unix(0, int64(binary.BigEndian.Uint64(d.Fixed(8)))).UTC()
	}
	b.Alarm.Delete = flags&flagAlarmDelete != 0
	b.Forget = flags&flagForget != 0
	if flags&flagWritten != 0 {
		b.Written = time.Unix(0, int64(binary.BigEndian.Uint64(d.Fixed(8)))).UTC()
	}
	n := d.Uvarint()
	if n > uint64(len(data)) {
		d.Fail()
	}
	if d.Err() == nil && n > 0 {
		b.Ops = make([]Op, 0, n)
	}
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		op := Op{Kind: OpKind(d.Byte())}
		op.Key = string(d.Bytes(math.MaxUint64))
		op.Value = d.Bytes(math.MaxUint64)
		if op.Kind < OpPut || op.Kind > OpDeleteAll {
			d.Fail()
		}
		b.Ops = append(b.Ops, op)
	}
	if d.Len() != 0 {
		d.Fail()
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return b, nil
}
