package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that is safe for concurrent use: a log sink
// for requests served in parallel, or a process's output read while the
// process still writes it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// JSONLines parses what was written so far as JSON log lines; see
// JSONLines.
func (b *SyncBuffer) JSONLines(t testing.TB) []LogLine {
	t.Helper()
	return JSONLines(t, b.String())
}

// LogLine is one JSON log line, as slog's JSON handler writes it.
type LogLine map[string]any

// Str returns the string field k, or "" when there is none.
func (l LogLine) Str(k string) string { s, _ := l[k].(string); return s }

// Num returns the number field k as an int, or 0 when there is none.
func (l LogLine) Num(k string) int { f, _ := l[k].(float64); return int(f) }

// ParseJSONLines parses text as JSON objects, one a line; blank lines are
// skipped. The error quotes the first line that is not a JSON object.
func ParseJSONLines(text string) ([]LogLine, error) {
	var out []LogLine
	for _, s := range strings.Split(text, "\n") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		var l LogLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return nil, fmt.Errorf("log line is not JSON: %v: %q", err, s)
		}
		if l == nil {
			return nil, fmt.Errorf("log line is not a JSON object: %q", s)
		}
		out = append(out, l)
	}
	return out, nil
}

// JSONLines is ParseJSONLines that fails the test on a line that is not a
// JSON object.
func JSONLines(t testing.TB, text string) []LogLine {
	t.Helper()
	lines, err := ParseJSONLines(text)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}
