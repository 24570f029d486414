package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fillcast/fillcast/filelist"
)

// ErrDigest is wrapped by the error of a FileList whose answer is not
// the list asked for: its SHA-256 is not the digest.
var ErrDigest = errors.New("client: the answer does not match its digest")

// FileList fetches a title's file list by its digest
// (GET /v1/titles/{title}/filelist/{digest}), of up to 64 MiB, and checks
// that its SHA-256 is digest (an answer that is not is an error wrapping
// ErrDigest). A digest that is not the title's, or a title the cluster
// does not know, is an *Error with status 404. It is a read: it goes on
// to the next node after any failure, and is retried.
func (c *Client) FileList(ctx context.Context, title, digest string) ([]byte, error) {
	if !filelist.ValidDigest(digest) {
		return nil, fmt.Errorf("client: file list of %q: digest %q: want 64 lower-case hex characters (a title's files_digest)", title, digest)
	}
	r := c.request(http.MethodGet, "/v1/titles/"+url.PathEscape(title)+"/filelist/"+digest)
	r.limit = maxLarge
	a, err := c.retrying(ctx, r)
	if err != nil {
		return nil, err
	}
	if a.status < 200 || a.status > 299 {
		return nil, a.err(r)
	}
	if got := filelist.Digest(a.body); got != digest {
		return nil, fmt.Errorf("%w: GET %s%s: %d bytes of digest %s", ErrDigest, a.node, r.path, len(a.body), got)
	}
	return a.body, nil
}
