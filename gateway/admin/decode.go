package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxBody bounds request bodies; a larger one is answered 413.
const maxBody = 1 << 20

// maxFormDepth bounds the nesting of form keys (a.b[1].c...).
const maxFormDepth = 8

// readBody decodes the request body into a JSON object. JSON bodies keep
// numbers as json.Number; form bodies (urlencoded and multipart) yield
// strings and arrays of strings, and form reports that the values still
// need converting to their fields' types. An empty body is an empty object.
func readBody(w http.ResponseWriter, r *http.Request) (obj map[string]any, form bool, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		return readMultipart(r, params["boundary"])
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, false, bodyError(err)
	}
	switch mt {
	case "application/json":
		obj, err := decodeJSON(data)
		return obj, false, err
	case "application/x-www-form-urlencoded":
		obj, err := decodeForm(string(data))
		return obj, true, err
	case "":
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) > 0 && trimmed[0] == '{' {
			obj, err := decodeJSON(data)
			return obj, false, err
		}
		obj, err := decodeForm(string(data))
		return obj, true, err
	}
	return nil, false, errUnsupportedType
}

func bodyError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return errTooLarge
	}
	return &apiError{status: http.StatusBadRequest, body: message{"Cannot read request body"}}
}

// decodeJSON decodes one JSON object, with nothing after it.
func decodeJSON(data []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, errBadJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errBadJSON
	}
	return obj, nil
}

func decodeForm(body string) (map[string]any, error) {
	vals, err := url.ParseQuery(body)
	if err != nil {
		return nil, formError("Cannot parse form body")
	}
	return formTree(vals)
}

func readMultipart(r *http.Request, boundary string) (map[string]any, bool, error) {
	if boundary == "" {
		return nil, true, formError("Cannot parse multipart body")
	}
	if err := r.ParseMultipartForm(maxBody); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, true, errTooLarge
		}
		return nil, true, formError("Cannot parse multipart body")
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	obj, err := formTree(r.MultipartForm.Value)
	return obj, true, err
}

func formError(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, body: message{msg}}
}

// formTree turns flat form keys into a JSON object: "config.minute=5"
// nests, "paths[]=/a" appends, "paths[2]=/b" sets the (1-based) index and a
// repeated plain key ("paths=/a&paths=/b") makes an array.
func formTree(vals url.Values) (map[string]any, error) {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	root := map[string]any{}
	for _, k := range keys {
		path, ok := parseFormKey(k)
		if !ok {
			return nil, schemaViolation(map[string]any{k: "invalid form key"})
		}
		vs := vals[k]
		if path[len(path)-1].kind == segAppend {
			for _, v := range vs {
				if err := setForm(root, path, v); err != nil {
					return nil, schemaViolation(map[string]any{k: err.Error()})
				}
			}
			continue
		}
		var v any = vs[0]
		if len(vs) > 1 {
			v = toAny(vs)
		}
		if err := setForm(root, path, v); err != nil {
			return nil, schemaViolation(map[string]any{k: err.Error()})
		}
	}
	return finishForm(root).(map[string]any), nil
}

type segKind uint8

const (
	segName segKind = iota
	segIndex
	segAppend
)

type formSeg struct {
	kind  segKind
	name  string
	index int
}

// parseFormKey splits "a.b[1][]" into its segments. The first is a name.
func parseFormKey(k string) ([]formSeg, bool) {
	var segs []formSeg
	for k != "" {
		if len(segs) > maxFormDepth {
			return nil, false
		}
		if k[0] == '[' {
			end := strings.IndexByte(k, ']')
			if end < 0 || len(segs) == 0 {
				return nil, false
			}
			if end == 1 {
				segs = append(segs, formSeg{kind: segAppend})
			} else {
				n, err := strconv.Atoi(k[1:end])
				if err != nil || n < 1 || n > 10000 {
					return nil, false
				}
				segs = append(segs, formSeg{kind: segIndex, index: n})
			}
			k = strings.TrimPrefix(k[end+1:], ".")
			continue
		}
		end := strings.IndexAny(k, ".[")
		if end < 0 {
			end = len(k)
		}
		if end == 0 {
			return nil, false
		}
		segs = append(segs, formSeg{kind: segName, name: k[:end]})
		k = strings.TrimPrefix(k[end:], ".")
	}
	return segs, len(segs) > 0
}

// formArray collects indexed form values before they become a []any.
type formArray map[int]any

func setForm(node map[string]any, path []formSeg, v any) error {
	seg, rest := path[0], path[1:]
	if len(rest) == 0 {
		node[seg.name] = v
		return nil
	}
	child, err := formChild(node[seg.name], rest)
	if err != nil {
		return err
	}
	node[seg.name] = child
	return setChild(child, rest, v)
}

// formChild returns the container that the next segment of rest needs,
// reusing existing if it has the right shape.
func formChild(existing any, rest []formSeg) (any, error) {
	switch rest[0].kind {
	case segName:
		if existing == nil {
			return map[string]any{}, nil
		}
		if m, ok := existing.(map[string]any); ok {
			return m, nil
		}
	default:
		if existing == nil {
			return formArray{}, nil
		}
		if a, ok := existing.(formArray); ok {
			return a, nil
		}
	}
	return nil, errors.New("conflicting form keys")
}

func setChild(container any, path []formSeg, v any) error {
	if m, ok := container.(map[string]any); ok {
		return setForm(m, path, v)
	}
	arr := container.(formArray)
	seg, rest := path[0], path[1:]
	idx := seg.index
	if seg.kind == segAppend {
		idx = len(arr) + 1
		for arr[idx] != nil {
			idx++
		}
	}
	if len(rest) == 0 {
		arr[idx] = v
		return nil
	}
	child, err := formChild(arr[idx], rest)
	if err != nil {
		return err
	}
	arr[idx] = child
	return setChild(child, rest, v)
}

// finishForm replaces every formArray by a []any ordered by index.
func finishForm(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			v[k] = finishForm(child)
		}
		return v
	case formArray:
		idx := make([]int, 0, len(v))
		for i := range v {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		out := make([]any, len(idx))
		for n, i := range idx {
			out[n] = finishForm(v[i])
		}
		return out
	}
	return v
}

func toAny(vs []string) []any {
	out := make([]any, len(vs))
	for i, s := range vs {
		out[i] = s
	}
	return out
}
