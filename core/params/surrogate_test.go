package params

import (
	"errors"
	"testing"
)

// encoding/json turns an escaped lone surrogate into U+FFFD; FromJSON
// refuses it instead of changing the caller's text silently.
func TestFromJSONLoneSurrogate(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"CommonName":"a\ud800b"}`, false},
		{`{"CommonName":"\udc00"}`, false},
		{`{"SANs":"x\ud800"}`, false},
		{`{"CommonName":"\ud83d\ude00"}`, true}, // a valid pair
		{`{"CommonName":"a\ufffdb"}`, true},     // U+FFFD spelt out
		{"{\"CommonName\":\"a\uFFFDb\"}", true}, // U+FFFD as UTF-8
	} {
		_, err := FromJSON([]byte(tc.body))
		var pe *Error
		if tc.ok != (err == nil) || (err != nil && !errors.As(err, &pe)) {
			t.Errorf("%s: err %v, want ok=%v", tc.body, err, tc.ok)
		}
	}
}
