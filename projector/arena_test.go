package projector

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestArena(t *testing.T) {
	tests := []struct {
		name       string
		pieces     []int // sizes, filled with distinct bytes
		wantChunks int
	}{
		{"empty pieces", []int{0, 0, 3, 0}, 1},
		{"fills one chunk exactly", []int{arenaChunk / 2, arenaChunk / 2}, 1},
		{"spills into a second chunk", []int{arenaChunk / 2, arenaChunk/2 + 1}, 2},
		{"a piece larger than a chunk gets its own", []int{10, arenaChunk + 5, 10}, 2},
		{"a large piece first", []int{arenaChunk + 1, 10}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a arena
			// Two rounds: the second reuses what the reset kept.
			for round := range 2 {
				var spans []span
				var want [][]byte
				for i, n := range tc.pieces {
					p := bytes.Repeat([]byte{byte('a' + (i+round)%26)}, n)
					sp, b := a.alloc(n)
					copy(b, p)
					spans, want = append(spans, sp), append(want, p)
				}
				for i, sp := range spans {
					if got := a.str(sp); got != string(want[i]) {
						t.Fatalf("round %d piece %d: %d bytes %q…, want %d", round, i, len(got), got[:min(len(got), 8)], len(want[i]))
					}
				}
				if len(a.chunks) != tc.wantChunks {
					t.Errorf("round %d: %d chunks, want %d", round, len(a.chunks), tc.wantChunks)
				}
				a.reset()
				for _, c := range a.chunks {
					if cap(c) != arenaChunk || len(c) != 0 {
						t.Fatalf("after reset: chunk of len %d cap %d, want empty standard chunks", len(c), cap(c))
					}
				}
			}
		})
	}
}

// TestPackRoundTrip sets every string field of a row to a distinct value:
// packed and read back field by field it is the same row, so no field is
// left out of textField.
func TestPackRoundTrip(t *testing.T) {
	var r row
	v := reflect.ValueOf(&r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + strings.Repeat("·", i%3))
		case reflect.Slice:
			f.SetBytes([]byte(`{"k":"` + v.Type().Field(i).Name + `"}`))
		}
	}
	r.ID = "id-only-here"
	r.Time, r.StreamSeq, r.AmountMinor = time.Now().Unix(), 42, -7

	var a arena
	_, _ = a.alloc(5) // the row does not start at the chunk's start
	p := a.pack(&r)
	got := row{rowNumbers: p.rowNumbers}
	g := reflect.ValueOf(&got).Elem()
	texts := map[string]textField{}
	for f, s := range r.texts() {
		texts[s] = textField(f)
	}
	for i := range g.NumField() {
		f := g.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(a.field(&p, texts[v.Field(i).String()]))
		case reflect.Slice:
			f.SetBytes([]byte(a.field(&p, fData)))
		}
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("packed and read back:\n got %+v\nwant %+v", got, r)
	}
	if len(texts) != int(numTextFields) {
		t.Errorf("%d distinct texts, want %d: a string field is missing from texts()", len(texts), numTextFields)
	}
}

// TestBatchIDCollision makes two ids share a hash: both are rows, and a
// repeat of either is a duplicate.
func TestBatchIDCollision(t *testing.T) {
	sent := acks{}
	b := newBatch(10, sent.publish)
	b.add(newFakeMsg(1, 1, userAdded("a")), time.Now())
	// Pretend "b" hashes like "a": its hash points at row "a".
	b.ids[maphash.String(idSeed, "b")] = 0
	for i, id := range []string{"b", "a", "b", "c"} {
		b.add(newFakeMsg(uint64(i+2), 1, userAdded(id)), time.Now())
	}
	var ids []string
	for i := range b.rows {
		ids = append(ids, b.text.field(&b.rows[i], fID))
	}
	if got := fmt.Sprint(ids); got != "[a b c]" || b.dupsInBatch != 2 {
		t.Errorf("rows %s with %d duplicates, want [a b c] with 2", got, b.dupsInBatch)
	}
}
