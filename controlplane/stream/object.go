package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Object is one named value kept on the stream's servers beside the
// event stream (a JetStream object store), replaced whole by Put and
// followed by Watch on every node: how one node shares what it computed
// from the stream, such as the recommender's model.
type Object struct {
	s            *Stream
	bucket, name string
}

// Object returns the object name of bucket (letters, digits, '-', '_').
func (s *Stream) Object(bucket, name string) *Object {
	return &Object{s: s, bucket: bucket, name: name}
}

// store opens the bucket, creating it with the stream's replicas.
func (o *Object) store(ctx context.Context) (jetstream.ObjectStore, error) {
	js := o.s.JetStream()
	if js == nil {
		return nil, ErrUnavailable
	}
	st, err := js.ObjectStore(ctx, o.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		st, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: o.bucket, Storage: jetstream.FileStorage, Replicas: int(o.s.replicasNow.Load())})
	}
	if err != nil {
		return nil, fmt.Errorf("stream: object store %s: %w", o.bucket, err)
	}
	return st, nil
}

// Put replaces the object's value.
func (o *Object) Put(ctx context.Context, data []byte) error {
	st, err := o.store(ctx)
	if err != nil {
		return err
	}
	if _, err := st.PutBytes(ctx, o.name, data); err != nil {
		return fmt.Errorf("stream: put %s/%s: %w", o.bucket, o.name, err)
	}
	return nil
}

// Get returns the object's value, or nil when it has none.
func (o *Object) Get(ctx context.Context) ([]byte, error) {
	st, err := o.store(ctx)
	if err != nil {
		return nil, err
	}
	data, err := st.GetBytes(ctx, o.name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream: get %s/%s: %w", o.bucket, o.name, err)
	}
	return data, nil
}

// Watch calls fn with the object's value, if it has one, and with every
// value put after it, until ctx ends. While the stream is unavailable it
// waits, and it watches again after a connection is replaced.
func (o *Object) Watch(ctx context.Context, fn func(data []byte)) error {
	for ctx.Err() == nil {
		_, changed := o.s.current()
		if err := o.watch(ctx, changed, fn); err != nil && ctx.Err() == nil {
			o.s.log.Debug("stream: object watch", "bucket", o.bucket, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-time.After(time.Second):
		}
	}
	return nil
}

// watch follows the object until ctx ends, the connection changes, or
// an error.
func (o *Object) watch(ctx context.Context, changed <-chan struct{}, fn func([]byte)) error {
	st, err := o.store(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := st.Watch(wctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			return nil
		case info, ok := <-w.Updates():
			if !ok {
				return errors.New("stream: object watch ended")
			}
			if info == nil || info.Name != o.name || info.Deleted {
				continue // the end of the initial values, or another object
			}
			data, err := st.GetBytes(ctx, o.name)
			if err != nil {
				return err
			}
			fn(data)
		}
	}
}
