package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/controlplane/gateway"
)

// wantUpload is what a multipart ingest body should give, read part by
// part: the one "file" part's bytes and the last "ladder" part's first 64
// bytes, trimmed; ok false when the body is malformed or has no, two or
// an empty "file" part.
func wantUpload(boundary string, body []byte) (file []byte, ladder string, ok bool) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	files := 0
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", false
		}
		switch part.FormName() {
		case "file":
			files++
			if file, err = io.ReadAll(part); err != nil {
				return nil, "", false
			}
		case "ladder":
			b, _ := io.ReadAll(io.LimitReader(part, 64))
			ladder = strings.TrimSpace(string(b))
		}
	}
	return file, ladder, files == 1 && len(file) > 0
}

// multipartBody returns a multipart body with boundary b of parts given
// as form name, file name and content.
func multipartBody(b string, parts ...[3]string) []byte {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.SetBoundary(b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": p[0], "filename": p[1]}))
		w, _ := mw.CreatePart(h)
		io.WriteString(w, p[2])
	}
	mw.Close()
	return buf.Bytes()
}

// FuzzIngestMultipart: an ingest upload (POST /v1/titles/{id}/ingest as
// multipart/form-data) is stored as exactly the bytes of its one "file"
// part, with the "ladder" part's value, or refused with a 4xx that leaves
// no file behind in the uploads directory, whatever the body and
// boundary.
func FuzzIngestMultipart(f *testing.F) {
	a := newIngestAPI(f, "")
	uploads := filepath.Dir(a.d.Ingest.UploadPath())
	const b = "fuzzboundary"
	for _, body := range [][]byte{
		multipartBody(b, [3]string{"file", "movie.mp4", "not really a video"}, [3]string{"ladder", "", " per-title\n"}),
		multipartBody(b, [3]string{"ladder", "", strings.Repeat("x", 100)}, [3]string{"file", "m.mp4", "v"}),
		multipartBody(b, [3]string{"file", "a.mp4", "one"}, [3]string{"file", "b.mp4", "two"}),
		multipartBody(b, [3]string{"file", "empty.mp4", ""}),
		multipartBody(b, [3]string{"other", "", "x"}),
		multipartBody(b),
		multipartBody(b, [3]string{"file", "../../etc/passwd", "x"})[:60],
		[]byte("--" + b + "\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db=\r\n--" + b + "--\r\n"),
		[]byte("--" + b + "\r\nContent-Disposition: form-data; name=file\r\n\r\nno closing boundary"),
		[]byte("garbage"),
	} {
		f.Add(b, body)
	}
	f.Add("", []byte("--\r\n"))
	f.Add("a b", multipartBody("a b", [3]string{"file", "x", "y"}))
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		r := httptest.NewRequest("POST", "/v1/titles/t1/ingest", bytes.NewReader(body))
		ct := mime.FormatMediaType("multipart/form-data", map[string]string{"boundary": boundary})
		r.Header.Set("Content-Type", ct)
		path, ladder, err := a.saveUpload(r)
		left, rerr := os.ReadDir(uploads)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if path != "" {
			defer os.Remove(path)
		}
		file, wantLadder, ok := wantUpload(boundary, body)
		ok = ok && ct != ""
		if err != nil {
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Status < 400 || ge.Status >= 500 {
				t.Fatalf("upload refused with %v, not a 4xx", err)
			}
			if ok {
				t.Fatalf("upload of %q refused (%v), want it stored", body, err)
			}
			if len(left) != 0 {
				t.Fatalf("upload refused (%v), but %d files left in %s", err, len(left), uploads)
			}
			return
		}
		if !ok {
			t.Fatalf("upload of %q stored, want it refused", body)
		}
		got, rerr := os.ReadFile(path)
		if rerr != nil || !bytes.Equal(got, file) || ladder != wantLadder {
			t.Fatalf("stored %q, ladder %q (%v); want %q, ladder %q", got, ladder, rerr, file, wantLadder)
		}
		if len(left) != 1 || filepath.Join(uploads, left[0].Name()) != path {
			t.Fatalf("%d files in %s, want only %s", len(left), uploads, path)
		}
	})
}
