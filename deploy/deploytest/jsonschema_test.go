package deploytest

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// A JSON-schema validator for the keywords goformation's bundled schemas
// use (draft-04: $ref to local definitions, type, properties,
// patternProperties, additionalProperties, required, items, enum, pattern,
// anyOf, min/maxProperties, maxLength). The module graph has no JSON-schema
// validator, so the tests carry this one. It refuses a schema that uses any
// other keyword, so it can never skip a constraint it does not know.

type schemaValidator struct {
	root map[string]interface{}

	mu      sync.Mutex
	regexps map[string]*regexp.Regexp
}

// schemaError is one violation: where in the document, and what.
type schemaError struct {
	Path string
	Msg  string
}

func (e schemaError) String() string { return e.Path + ": " + e.Msg }

// Keywords with no effect on validity.
var annotationKeywords = map[string]bool{
	"$id": true, "$schema": true, "id": true, "description": true, "title": true, "default": true,
}

var validatingKeywords = map[string]bool{
	"$ref": true, "type": true, "properties": true, "patternProperties": true,
	"additionalProperties": true, "required": true, "items": true, "enum": true,
	"pattern": true, "anyOf": true, "maxProperties": true, "minProperties": true,
	"maxLength": true, "definitions": true,
}

func newSchemaValidator(schema []byte) (*schemaValidator, error) {
	var root map[string]interface{}
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, err
	}
	v := &schemaValidator{root: root, regexps: map[string]*regexp.Regexp{}}
	if err := v.checkKeywords(root, "#"); err != nil {
		return nil, err
	}
	return v, nil
}

// checkKeywords walks the whole schema once and refuses unknown keywords.
func (v *schemaValidator) checkKeywords(s map[string]interface{}, at string) error {
	for k, val := range s {
		switch {
		case annotationKeywords[k]:
			continue
		case !validatingKeywords[k]:
			return fmt.Errorf("schema keyword %q at %s is not supported by this validator", k, at)
		}
		switch k {
		case "properties", "patternProperties", "definitions":
			m, ok := val.(map[string]interface{})
			if !ok {
				return fmt.Errorf("%s/%s is not an object", at, k)
			}
			for name, sub := range m {
				sm, ok := sub.(map[string]interface{})
				if !ok {
					return fmt.Errorf("%s/%s/%s is not a schema", at, k, name)
				}
				if err := v.checkKeywords(sm, at+"/"+k+"/"+name); err != nil {
					return err
				}
			}
		case "additionalProperties", "items":
			if sm, ok := val.(map[string]interface{}); ok {
				if err := v.checkKeywords(sm, at+"/"+k); err != nil {
					return err
				}
			} else if _, ok := val.(bool); !ok || k == "items" {
				return fmt.Errorf("%s/%s: unsupported form %T", at, k, val)
			}
		case "anyOf":
			l, ok := val.([]interface{})
			if !ok {
				return fmt.Errorf("%s/anyOf is not a list", at)
			}
			for i, sub := range l {
				sm, ok := sub.(map[string]interface{})
				if !ok {
					return fmt.Errorf("%s/anyOf/%d is not a schema", at, i)
				}
				if err := v.checkKeywords(sm, fmt.Sprintf("%s/anyOf/%d", at, i)); err != nil {
					return err
				}
			}
		case "pattern":
			if _, err := v.regexp(str(val)); err != nil {
				return fmt.Errorf("%s/pattern: %v", at, err)
			}
		}
	}
	return nil
}

func (v *schemaValidator) regexp(p string) (*regexp.Regexp, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if re, ok := v.regexps[p]; ok {
		return re, nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	v.regexps[p] = re
	return re, nil
}

func (v *schemaValidator) resolve(ref string) (map[string]interface{}, error) {
	name, ok := strings.CutPrefix(ref, "#/definitions/")
	if !ok {
		return nil, fmt.Errorf("unsupported $ref %q", ref)
	}
	d, ok := getPath(v.root, "definitions", name).(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("unknown definition %q", ref)
	}
	return d, nil
}

// Validate checks doc against the root schema.
func (v *schemaValidator) Validate(doc interface{}) []schemaError {
	var errs []schemaError
	v.validate(v.root, doc, "", &errs, false)
	return errs
}

// validate appends the violations of x against s. With first set it stops at
// the first violation (used to try the branches of anyOf).
func (v *schemaValidator) validate(s map[string]interface{}, x interface{}, path string, errs *[]schemaError, first bool) {
	fail := func(format string, a ...interface{}) {
		*errs = append(*errs, schemaError{Path: pathOr(path), Msg: fmt.Sprintf(format, a...)})
	}
	done := func() bool { return first && len(*errs) > 0 }

	if ref, ok := s["$ref"].(string); ok {
		d, err := v.resolve(ref)
		if err != nil {
			fail("%v", err)
			return
		}
		v.validate(d, x, path, errs, first)
		if done() {
			return
		}
	}
	if t, ok := s["type"]; ok {
		if !typeMatches(t, x) {
			fail("is %s, the schema wants %v", jsonType(x), t)
			return
		}
	}
	if e, ok := s["enum"].([]interface{}); ok {
		found := false
		for _, want := range e {
			if jsonEqual(want, x) {
				found = true
				break
			}
		}
		if !found {
			fail("%s is not one of %v", short(x), e)
			if done() {
				return
			}
		}
	}
	if p, ok := s["pattern"].(string); ok {
		if xs, ok := x.(string); ok {
			re, _ := v.regexp(p)
			if !re.MatchString(xs) {
				fail("%q does not match %s", xs, p)
				if done() {
					return
				}
			}
		}
	}
	if ml, ok := s["maxLength"].(float64); ok {
		if xs, ok := x.(string); ok && float64(len([]rune(xs))) > ml {
			fail("longer than %v characters", ml)
			if done() {
				return
			}
		}
	}
	if obj, ok := x.(map[string]interface{}); ok {
		v.validateObject(s, obj, path, errs, first)
		if done() {
			return
		}
	}
	if arr, ok := x.([]interface{}); ok {
		if items, ok := s["items"].(map[string]interface{}); ok {
			for i, e := range arr {
				v.validate(items, e, fmt.Sprintf("%s/%d", path, i), errs, first)
				if done() {
					return
				}
			}
		}
	}
	if branches, ok := s["anyOf"].([]interface{}); ok {
		v.validateAnyOf(branches, x, path, errs, first)
	}
}

func (v *schemaValidator) validateObject(s, obj map[string]interface{}, path string, errs *[]schemaError, first bool) {
	fail := func(format string, a ...interface{}) {
		*errs = append(*errs, schemaError{Path: pathOr(path), Msg: fmt.Sprintf(format, a...)})
	}
	done := func() bool { return first && len(*errs) > 0 }

	for _, r := range list(s["required"]) {
		if _, ok := obj[str(r)]; !ok {
			fail("required property %q is missing", str(r))
			if done() {
				return
			}
		}
	}
	if n, ok := s["maxProperties"].(float64); ok && float64(len(obj)) > n {
		fail("more than %v properties", n)
		if done() {
			return
		}
	}
	if n, ok := s["minProperties"].(float64); ok && float64(len(obj)) < n {
		fail("fewer than %v properties", n)
		if done() {
			return
		}
	}
	props, _ := s["properties"].(map[string]interface{})
	patterns, _ := s["patternProperties"].(map[string]interface{})
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable messages
	for _, k := range keys {
		val := obj[k]
		sub := path + "/" + k
		matched := false
		if ps, ok := props[k].(map[string]interface{}); ok {
			matched = true
			v.validate(ps, val, sub, errs, first)
			if done() {
				return
			}
		}
		for p, psch := range patterns {
			re, _ := v.regexp(p)
			if re.MatchString(k) {
				matched = true
				v.validate(psch.(map[string]interface{}), val, sub, errs, first)
				if done() {
					return
				}
			}
		}
		if matched {
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				fail("property %q is not allowed here", k)
				if done() {
					return
				}
			}
		case map[string]interface{}:
			v.validate(ap, val, sub, errs, first)
			if done() {
				return
			}
		}
	}
}

// validateAnyOf passes if one branch passes. Otherwise it reports the branch
// with the fewest violations (for a resource, the definition of its own
// Type), so that the message is about the right alternative.
func (v *schemaValidator) validateAnyOf(branches []interface{}, x interface{}, path string, errs *[]schemaError, first bool) {
	for _, b := range branches {
		var e []schemaError
		v.validate(b.(map[string]interface{}), x, path, &e, true)
		if len(e) == 0 {
			return
		}
	}
	if first {
		*errs = append(*errs, schemaError{Path: pathOr(path), Msg: "matches none of the anyOf branches"})
		return
	}
	var best []schemaError
	for _, b := range branches {
		var e []schemaError
		v.validate(b.(map[string]interface{}), x, path, &e, false)
		if best == nil || len(e) < len(best) {
			best = e
		}
	}
	if len(best) == 0 { // cannot happen: every branch failed above
		best = []schemaError{{Path: pathOr(path), Msg: "matches none of the anyOf branches"}}
	}
	if len(branches) > 1 {
		for i := range best {
			best[i].Msg += fmt.Sprintf(" (closest of %d alternatives)", len(branches))
		}
	}
	*errs = append(*errs, best...)
}

func pathOr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func typeMatches(t interface{}, x interface{}) bool {
	for _, want := range strList(t) {
		switch want {
		case "object":
			if _, ok := x.(map[string]interface{}); ok {
				return true
			}
		case "array":
			if _, ok := x.([]interface{}); ok {
				return true
			}
		case "string":
			if _, ok := x.(string); ok {
				return true
			}
		case "number":
			if _, ok := x.(float64); ok {
				return true
			}
		case "integer":
			if f, ok := x.(float64); ok && f == math.Trunc(f) {
				return true
			}
		case "boolean":
			if _, ok := x.(bool); ok {
				return true
			}
		case "null":
			if x == nil {
				return true
			}
		}
	}
	return false
}

func jsonType(x interface{}) string {
	switch v := x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []interface{}:
		return "an array"
	case map[string]interface{}:
		if len(v) == 1 {
			for k := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return "an unresolved intrinsic function " + k
				}
			}
		}
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func jsonEqual(a, b interface{}) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func short(x interface{}) string {
	b, _ := json.Marshal(x)
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}
