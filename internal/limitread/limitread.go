// Package limitread reads a whole stream that may not be longer than a
// bound: what a server, a stick or another user hands over is read into
// memory only up to what its kind can hold.
package limitread

import (
	"fmt"
	"io"
)

// ReadAll reads r to its end, failing ("larger than N bytes") once it
// gives more than limit bytes, without reading further.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}
