// Package filelist is the encoding of a title's file list (every
// packaged file's path, size and sha256) as one content-addressed object.
//
// The replicated catalog keeps only a title's Summary (its digest, total
// bytes, file count, poster and downloads); the list itself is published
// with the packaged title at the origin, at Path(title, digest), and
// fetched by whoever needs every file: the fill executor, ingest's
// verification, `GET /v1/titles/{id}?files=1`. The encoding is canonical
// (one header line, then one line a file, sorted by path), so the same
// files always give the same bytes and the same digest, the hex SHA-256 of
// those bytes: a list fetched from anywhere is checked against it.
//
//	fillcast-files 1
//	720p/init.mp4	1234	<64 hex or empty>
//	720p/seg-00001.m4s	1500000	<64 hex>
package filelist

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast"
)

// Header is the first line of every list, version included.
const Header = "fillcast-files 1\n"

// Dir is the directory of a title's list objects on the origin.
const Dir = "_files"

// PosterPath is the poster's path within a title, when it has one.
const PosterPath = "poster.jpg"

// DownloadDir is the directory of a title's MP4 downloads.
const DownloadDir = "download/"

// MaxLine bounds one encoded line: a path (fillcast.ValidateObjectPath
// allows no tab or newline in it), a size and a digest.
const MaxLine = fillcast.MaxObjectPathLen + 100

// ErrList is wrapped by every error about a list's content.
var ErrList = errors.New("filelist: bad list")

// Summary is what the catalog keeps of a list.
type Summary struct {
	Digest    string   // hex SHA-256 of the encoded list
	Bytes     int64    // sum of the files' sizes
	Count     int      // files
	Poster    string   // PosterPath when the list has it, else empty
	Downloads []string // paths under DownloadDir, sorted
}

// SetOn records s in t's summary fields (FilesDigest, Bytes, FileCount,
// Poster, Downloads) and drops t.Files, which the catalog never keeps.
func (s Summary) SetOn(t *fillcast.Title) {
	t.Files = nil
	t.FilesDigest, t.Bytes, t.FileCount = s.Digest, s.Bytes, s.Count
	t.Poster, t.Downloads = s.Poster, s.Downloads
}

// Path is where title's list of digest lives, relative to the origin's
// root (and to an appliance's cache: its key).
func Path(title, digest string) string { return title + "/" + Dir + "/" + digest }

// ValidDigest reports whether s is a digest as Encode makes them: 64
// lower-case hex characters.
func ValidDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Digest is the digest of an encoded list.
func Digest(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Encode returns files' canonical list (sorted by path; files is not
// changed) and its Summary. It refuses an invalid path, a negative size, a
// malformed sha256 or a path given twice.
func Encode(files []fillcast.File) ([]byte, Summary, error) {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b fillcast.File) int { return strings.Compare(a.Path, b.Path) })
	var b bytes.Buffer
	b.Grow(len(Header) + len(sorted)*100)
	b.WriteString(Header)
	var s Summary
	for i, f := range sorted {
		if err := check(f); err != nil {
			return nil, Summary{}, err
		}
		if i > 0 && sorted[i-1].Path == f.Path {
			return nil, Summary{}, fmt.Errorf("%w: %q listed twice", ErrList, f.Path)
		}
		b.WriteString(f.Path)
		b.WriteByte('\t')
		b.WriteString(strconv.FormatInt(f.Size, 10))
		b.WriteByte('\t')
		b.WriteString(f.SHA256)
		b.WriteByte('\n')
		s.add(f)
	}
	s.Digest = Digest(b.Bytes())
	return b.Bytes(), s, nil
}

func (s *Summary) add(f fillcast.File) {
	s.Bytes += f.Size
	s.Count++
	switch {
	case f.Path == PosterPath:
		s.Poster = PosterPath
	case strings.HasPrefix(f.Path, DownloadDir):
		s.Downloads = append(s.Downloads, f.Path)
	}
}

// check validates one file.
func check(f fillcast.File) error {
	if err := fillcast.ValidateObjectPath(f.Path); err != nil {
		return fmt.Errorf("%w: path %q: %v", ErrList, f.Path, err)
	}
	if f.Size < 0 {
		return fmt.Errorf("%w: %q: negative size", ErrList, f.Path)
	}
	if f.SHA256 != "" && !ValidDigest(f.SHA256) {
		return fmt.Errorf("%w: %q: sha256 %q: want 64 lower-case hex characters", ErrList, f.Path, f.SHA256)
	}
	return nil
}

// Decode reads an encoded list from r and calls fn with each file, in
// path order, stopping at fn's first error. It checks what Encode
// guarantees (the header, each line's fields, strictly increasing
// paths), so a list that decodes is canonical, and returns the list's
// Summary when it ends. It does not check the digest (the caller knows
// which one it asked for: compare Summary.Digest).
func Decode(r io.Reader, fn func(fillcast.File) error) (Summary, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(r, h), 64<<10)
	var s Summary
	head, err := readLine(br)
	if err != nil || head+"\n" != Header {
		return Summary{}, fmt.Errorf("%w: want the header %q", ErrList, strings.TrimSpace(Header))
	}
	prev := ""
	for n := 2; ; n++ {
		line, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Summary{}, fmt.Errorf("filelist: line %d: %w", n, err)
		}
		f, err := parseLine(line)
		if err != nil {
			return Summary{}, fmt.Errorf("%w: line %d: %v", ErrList, n, err)
		}
		if n > 2 && f.Path <= prev {
			return Summary{}, fmt.Errorf("%w: line %d: %q out of order (paths are sorted, each once)", ErrList, n, f.Path)
		}
		prev = f.Path
		s.add(f)
		if err := fn(f); err != nil {
			return Summary{}, err
		}
	}
	s.Digest = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// DecodeAll decodes a whole list held in memory.
func DecodeAll(body []byte) ([]fillcast.File, Summary, error) {
	files := make([]fillcast.File, 0, bytes.Count(body, []byte{'\n'}))
	s, err := Decode(bytes.NewReader(body), func(f fillcast.File) error {
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, Summary{}, err
	}
	return files, s, nil
}

// readLine returns the next line without its newline; io.EOF at a clean
// end, an error for a last line without one or a line over MaxLine.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(line) == 0:
		return "", io.EOF
	case err == io.EOF:
		return "", fmt.Errorf("%w: the last line has no newline (truncated?)", ErrList)
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > MaxLine:
		return "", fmt.Errorf("%w: a line over %d bytes", ErrList, MaxLine)
	case err != nil:
		return "", err
	}
	return string(line[:len(line)-1]), nil
}

func parseLine(line string) (fillcast.File, error) {
	path, rest, ok1 := strings.Cut(line, "\t")
	size, sum, ok2 := strings.Cut(rest, "\t")
	if !ok1 || !ok2 {
		return fillcast.File{}, errors.New("want path, size and sha256 separated by tabs")
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != size {
		return fillcast.File{}, fmt.Errorf("size %q: want a decimal number", size)
	}
	f := fillcast.File{Path: path, Size: n, SHA256: sum}
	if err := check(f); err != nil {
		return fillcast.File{}, err
	}
	return f, nil
}
