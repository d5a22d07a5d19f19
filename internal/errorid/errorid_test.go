package errorid

import "testing"

func TestNew(t *testing.T) {
	a, b := New(), New()
	if len(a) != 16 || a == b {
		t.Fatalf("ids %q and %q: want two different 16-digit ids", a, b)
	}
}
