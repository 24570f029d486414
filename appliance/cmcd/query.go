package cmcd

import (
	"bytes"
	"slices"
)

// AppendQuery finds the CMCD parameter in query, a URL's raw query
// without the '?' ("a=1&CMCD=br%3D3200%2Cot%3Dv"), and appends its value,
// percent-decoded ('+' is a space, as in a form), to dst, which it
// returns: with a dst of enough capacity it allocates nothing. found
// reports whether the parameter was there; a bad percent-escape is a
// *SyntaxError whose Offset is in query. Of repeated parameters the first
// counts.
//
// A fasthttp server has the parameter decoded already, in a buffer of
// the request's (RequestCtx.QueryArgs().Peek(QueryParam)): the
// appliance's server parses that. This is for the others.
func AppendQuery(dst, query []byte) (out []byte, found bool, err error) {
	for off := 0; off <= len(query); {
		p := query[off:]
		if i := bytes.IndexByte(p, '&'); i >= 0 {
			p = p[:i]
		}
		if len(p) > len(QueryParam) && p[len(QueryParam)] == '=' && string(p[:len(QueryParam)]) == QueryParam {
			start := off + len(QueryParam) + 1
			out, err = unescape(dst, query[start:off+len(p)], start)
			return out, true, err
		}
		off += len(p) + 1
	}
	return dst, false, nil
}

// unescape appends s percent-decoded to dst; base is s's offset in the
// query, for errors.
func unescape(dst, s []byte, base int) ([]byte, error) {
	dst = slices.Grow(dst, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) {
				return dst, syntaxError(base+i, nil, "'%' in the query without two hex digits")
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, syntaxError(base+i, nil, "'%' in the query without two hex digits")
			}
			c = hi<<4 | lo
			i += 2
		}
		dst = append(dst, c)
	}
	return dst, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
