package projector

import "unsafe"

// arenaChunk is the size of an arena's chunks; a larger piece gets a chunk
// of its own.
const arenaChunk = 4 << 20

// arena holds a batch's strings (its rows' values and its messages' reply
// subjects) in a few large chunks of bytes. A batch of tens of thousands of
// rows then holds no pointers for the garbage collector to follow: its rows
// and deliveries refer to their strings by span, and chunks hold no
// pointers. A reset keeps the standard chunks for the next batch.
type arena struct {
	chunks [][]byte
	cur    int // the chunk being filled
}

// span locates a piece of an arena.
type span struct {
	chunk, off, n uint32
}

// alloc returns a new piece of n bytes, to be filled by the caller.
func (a *arena) alloc(n int) (span, []byte) {
	if n > arenaChunk {
		a.chunks = append(a.chunks, make([]byte, n))
		return span{chunk: uint32(len(a.chunks) - 1), n: uint32(n)}, a.chunks[len(a.chunks)-1]
	}
	if len(a.chunks) == 0 || len(a.chunks[a.cur])+n > cap(a.chunks[a.cur]) {
		a.next()
	}
	c := a.chunks[a.cur]
	off := len(c)
	a.chunks[a.cur] = c[:off+n]
	return span{chunk: uint32(a.cur), off: uint32(off), n: uint32(n)}, c[off : off+n : off+n]
}

// next makes the next empty standard chunk current, adding one if there
// is none.
func (a *arena) next() {
	for i := a.cur + 1; i < len(a.chunks); i++ {
		if cap(a.chunks[i]) == arenaChunk && len(a.chunks[i]) == 0 {
			a.cur = i
			return
		}
	}
	a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
	a.cur = len(a.chunks) - 1
}

// add copies s into the arena.
func (a *arena) add(s string) span {
	sp, b := a.alloc(len(s))
	copy(b, s)
	return sp
}

// str returns the piece at s as a string without copying it. The string
// must not outlive the next reset, which lets its bytes be overwritten:
// whoever keeps it copies it (the ClickHouse driver and NATS publish both
// copy).
func (a *arena) str(s span) string {
	if s.n == 0 {
		return ""
	}
	return unsafe.String(&a.chunks[s.chunk][s.off], s.n)
}

// reset empties the arena, keeping its standard chunks and dropping the
// ones made for large pieces.
func (a *arena) reset() {
	kept := a.chunks[:0]
	for _, c := range a.chunks {
		if cap(c) == arenaChunk {
			kept = append(kept, c[:0])
		}
	}
	clear(a.chunks[len(kept):])
	a.chunks = kept
	a.cur = 0
}
