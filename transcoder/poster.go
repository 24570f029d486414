package transcoder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// PosterName is the title's artwork: one frame of the top rendition,
// scaled to posterWidth, for catalog pages.
const PosterName = "poster.jpg"

const posterWidth = 480

// poster grabs a frame a tenth of the way in (past titles and fades)
// from the top video rendition, already encoded, so the source is not
// decoded a second time.
func (r *run) poster(ctx context.Context, pkg *packaged) error {
	top := pkg.tracks[0]
	if err := r.writeConcatList(top); err != nil {
		return err
	}
	at := top.end() / 10
	args := []string{
		"-ss", strconv.FormatFloat(at, 'f', 3, 64), "-i", "concatf:" + concatList(r.work, top),
		"-frames:v", "1", "-vf", "scale=" + strconv.Itoa(posterWidth) + ":-2", "-q:v", "4", "-f", "image2", PosterName,
	}
	runner := r.t.ffmpeg
	runner.Dir = r.title
	if err := runner.Run(ctx, args, nil); err != nil {
		return fmt.Errorf("transcoder: poster: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(r.title, PosterName)); err != nil || fi.Size() == 0 {
		return fmt.Errorf("transcoder: poster: ffmpeg wrote no picture at %.1fs", at)
	}
	return nil
}
