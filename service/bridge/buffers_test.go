package bridge

import "testing"

// A copy loop waits with its smallBuffer, takes a copyBuffer for a burst
// (a read that filled the small one, or that it could not have held), and
// lets it go after keepBig reads in a row that the small one would have
// held (docs/performance.md, change 11).
func TestBuffers(t *testing.T) {
	bb := newBuffers()
	small := bb.small
	steps := []struct {
		name    string
		n       int // bytes the read returned
		wantLen int // of the buffer for the next read
	}{
		{"small read", 8, smallBuffer},
		{"an error, nothing read", 0, smallBuffer},
		{"a full small read: a burst", smallBuffer, copyBuffer},
		{"a full big read", copyBuffer, copyBuffer},
		{"the rest of a record", 100, copyBuffer},
		{"a read of exactly smallBuffer", smallBuffer, copyBuffer},
	}
	for i := 1; i < keepBig; i++ {
		steps = append(steps, struct {
			name    string
			n       int
			wantLen int
		}{"quiet read, burst buffer kept", 10, copyBuffer})
	}
	steps = append(steps, struct {
		name    string
		n       int
		wantLen int
	}{"keepBig quiet reads in a row: burst over", 10, smallBuffer})
	var big []byte
	for i, s := range steps {
		got := bb.next(s.n)
		if len(got) != s.wantLen {
			t.Fatalf("step %d (%s): next buffer %d bytes, want %d", i, s.name, len(got), s.wantLen)
		}
		switch {
		case s.wantLen == smallBuffer && &got[0] != &small[0]:
			t.Fatalf("step %d (%s): a small buffer that is not the loop's own", i, s.name)
		case s.wantLen == copyBuffer && big != nil && &got[0] != &big[0]:
			t.Fatalf("step %d (%s): a new copyBuffer within one burst", i, s.name)
		case s.wantLen == copyBuffer:
			big = got
		}
	}
	if bb.big != nil {
		t.Fatal("the burst buffer is still held after the burst")
	}
	// Records of a little over 4 KiB: a full read, then a short one, again
	// and again, keep one copyBuffer.
	first := bb.next(smallBuffer)
	for range 10 {
		bb.next(100)
		if got := bb.next(smallBuffer); &got[0] != &first[0] {
			t.Fatal("a copyBuffer allocated per record of a little over 4 KiB")
		}
	}
}
