package storage

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestBatchCodecRoundTrip(t *testing.T) {
	obj := ObjectID{1, 2, 3}
	at := time.Unix(1700000000, 123456789).UTC()
	tests := []struct {
		name  string
		batch Batch
	}{
		{"empty", Batch{Object: obj}},
		{"meta only", Batch{Object: obj, Meta: &ObjectMeta{Class: "ChatLobby", Name: "main"}}},
		{"alarm set", Batch{Object: obj, Alarm: AlarmChange{Set: true, At: at}}},
		{"alarm delete", Batch{Object: obj, Alarm: AlarmChange{Delete: true}}},
		{"ops", Batch{Object: obj, Ops: []Op{
			{Kind: OpPut, Key: "k1", Value: []byte("v1")},
			{Kind: OpPut, Key: "empty", Value: []byte{}},
			{Kind: OpDelete, Key: "k2"},
			{Kind: OpDeleteAll},
		}}},
		{"written", Batch{Object: obj, Written: at, Ops: []Op{{Kind: OpDelete, Key: "k"}}}},
		{"everything", Batch{Object: obj, Meta: &ObjectMeta{Class: "C"}, Alarm: AlarmChange{Set: true, At: at}, Written: at.Add(time.Second),
			Ops: []Op{{Kind: OpPut, Key: "x", Value: make([]byte, 1000)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendBatch(nil, &tc.batch)
			got, err := DecodeBatch(enc)
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			want := tc.batch
			// Decoding yields empty, not nil, values and no ops slice for none.
			for i := range want.Ops {
				if want.Ops[i].Value == nil {
					want.Ops[i].Value = []byte{}
				}
			}
			if !reflect.DeepEqual(got, &want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
			}
		})
	}
}

func TestDecodeBatchRejectsGarbage(t *testing.T) {
	good := AppendBatch(nil, &Batch{Object: ObjectID{9}, Meta: &ObjectMeta{Class: "C", Name: "n"},
		Ops: []Op{{Kind: OpPut, Key: "k", Value: []byte("v")}}})
	inputs := map[string][]byte{
		"nil":           nil,
		"wrong version": append([]byte{9}, good[1:]...),
		"trailing byte": append(append([]byte{}, good...), 0),
		"bad op kind":   func() []byte { b := append([]byte{}, good...); b[len(b)-5] = 77; return b }(),
	}
	for cut := 1; cut < len(good); cut++ {
		inputs["truncated"+string(rune('a'+cut%26))+string(rune('0'+cut/26))] = good[:cut]
	}
	for name, in := range inputs {
		if _, err := DecodeBatch(in); !errors.Is(err, ErrBadBatch) {
			t.Errorf("%s: DecodeBatch err = %v, want ErrBadBatch", name, err)
		}
	}
}
