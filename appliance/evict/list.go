package evict

// node is an entry of an intrusive doubly linked list.
type node struct {
	key        string
	size       int64
	freq       uint8
	inMain     bool
	idx        int    // TinyLFU: position in the main slice
	last       uint64 // TinyLFU: tick of the last request
	prev, next *node
}

// list is a doubly linked list with a sentinel; head is the newest end.
type list struct {
	root  node
	len   int
	bytes int64
}

func (l *list) init() {
	l.root.next = &l.root
	l.root.prev = &l.root
}

func (l *list) pushFront(n *node) {
	n.prev = &l.root
	n.next = l.root.next
	l.root.next.prev = n
	l.root.next = n
	l.len++
	l.bytes += n.size
}

func (l *list) remove(n *node) {
	n.prev.next = n.next
	n.next.prev = n.prev
	n.prev, n.next = nil, nil
	l.len--
	l.bytes -= n.size
}

// back returns the oldest node or nil.
func (l *list) back() *node {
	if l.len == 0 {
		return nil
	}
	return l.root.prev
}
