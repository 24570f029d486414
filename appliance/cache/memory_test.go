package cache

import "testing"

// TestMemoryPurgeByPrefix: delPrefix removes the memory tier's objects of
// a prefix, those the disk tier never held included, and only those; an
// object evicted or refused is forgotten.
func TestMemoryPurgeByPrefix(t *testing.T) {
	m, err := newMemTier(1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	for _, k := range []string{"t1/a", "t1/b", "t10/a", "t2/a"} {
		m.set(k, Meta{Size: 3}, []byte("abc"))
	}
	m.c.Wait()
	if n := m.delPrefix("t1/"); n != 2 {
		t.Errorf("delPrefix(t1/) = %d, want 2", n)
	}
	m.c.Wait()
	for k, want := range map[string]bool{"t1/a": false, "t1/b": false, "t10/a": true, "t2/a": true} {
		if _, ok := m.get(k); ok != want {
			t.Errorf("%s in memory: %v, want %v", k, ok, want)
		}
	}
	// Objects that leave the tier leave the key list.
	big, err := newMemTier(4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer big.close()
	for i := range 64 {
		big.set(string(rune('a'+i%26))+string(rune('a'+i/26)), Meta{Size: 1024}, make([]byte, 1024))
		big.c.Wait()
	}
	big.mu.Lock()
	n := len(big.keys)
	big.mu.Unlock()
	if n > 4 {
		t.Errorf("%d keys listed for a tier that holds at most 4 objects", n)
	}
}
