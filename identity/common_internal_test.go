package identity

import (
	"strings"
	"testing"
)

func TestCommonListWellFormed(t *testing.T) {
	t.Parallel()
	list := commonList()
	for i, w := range list {
		if w != strings.ToLower(w) || strings.TrimSpace(w) != w {
			t.Errorf("entry %d %q is not lower case and trimmed", i, w)
		}
		if i > 0 && list[i-1] >= w {
			t.Fatalf("entries %q, %q not sorted or duplicated", list[i-1], w)
		}
	}
}
