package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestParseJSONLines(t *testing.T) {
	lines, err := ParseJSONLines("{\"msg\":\"request\",\"Status\":200}\n\n  \n{\"msg\":\"x\"}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Str("msg") != "request" || lines[0].Num("Status") != 200 || lines[1].Str("msg") != "x" {
		t.Fatalf("lines %v", lines)
	}
	if lines[1].Str("Status") != "" || lines[1].Num("msg") != 0 {
		t.Errorf("a missing or mistyped field is not the zero value")
	}
	for _, bad := range []string{"{\"msg\":1}\nnot json\n", "null\n", "[1]\n"} {
		if _, err := ParseJSONLines(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := ParseJSONLines("level=INFO msg=SECRET\n"); err == nil || !strings.Contains(err.Error(), "SECRET") {
		t.Errorf("the error %v does not quote the line", err)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(&b, "{\"n\":%d}\n", i)
		}()
	}
	wg.Wait()
	if n := len(b.JSONLines(t)); n != 50 {
		t.Fatalf("%d lines, want 50", n)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {1, 5}, {0.25, 2}, {0.125, 1.5}} {
		if got := Quantile(xs, tc.q); got != tc.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", xs, tc.q, got, tc.want)
		}
	}
	if xs[0] != 5 {
		t.Error("Quantile sorted its input in place")
	}
	if Quantile([]float64(nil), 0.5) != 0 {
		t.Error("Quantile of nothing is not 0")
	}
}
