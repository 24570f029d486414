package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/client/clienttest"
	"github.com/fillcast/fillcast/filelist"
)

// TestFileList: a list comes back when its bytes are its digest, with an
// appliance's credential, over 1 MiB if need be; a wrong answer, an
// unknown list and a malformed digest are errors.
func TestFileList(t *testing.T) {
	t.Parallel()
	cl := clienttest.New(t, 2)
	files := make([]fillcast.File, 15_000) // some 1.4 MB
	for i := range files {
		files[i] = fillcast.File{Path: fmt.Sprintf("720p/seg-%05d.m4s", i), Size: 16000, SHA256: strings.Repeat("ab", 32)}
	}
	body, sum, err := filelist.Encode(files)
	if err != nil {
		t.Fatal(err)
	}
	cl.SetFileList("t1", sum.Digest, body)
	other := filelist.Digest([]byte("another list"))
	cl.SetFileList("t2", other, body) // served under a digest it does not have
	// The first node fails: a read goes on to the next.
	cl.Nodes()[0].Fail(http.StatusServiceUnavailable)
	c := newClient(t, Config{URLs: cl.URLs()}, Deps{Token: credential(t, cl, "a1")})
	ctx := context.Background()

	got, err := c.FileList(ctx, "t1", sum.Digest)
	if err != nil || string(got) != string(body) {
		t.Fatalf("FileList: %d bytes, %v; want the %d of the list", len(got), err, len(body))
	}
	for _, tt := range []struct {
		name, title, digest string
		check               func(error) bool
		want                string
	}{
		{"another list's bytes", "t2", other, func(err error) bool { return errors.Is(err, ErrDigest) }, "ErrDigest"},
		{"an unknown list", "t1", other, func(err error) bool { return StatusCode(err) == http.StatusNotFound }, "a 404"},
		{"not a digest", "t1", "ABC", func(err error) bool { return err != nil && strings.Contains(err.Error(), "64 lower-case hex") }, "an error naming the digest's form"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := c.FileList(ctx, tt.title, tt.digest); got != nil || !tt.check(err) {
				t.Errorf("got %d bytes, %v; want %s", len(got), err, tt.want)
			}
		})
	}
}
