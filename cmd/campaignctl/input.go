package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxInput bounds an input file.
const maxInput = 8 << 20

// readInput reads path ("-" for stdin) as YAML or JSON (JSON is YAML) and returns the
// documents it holds: one object, or each object of a top-level list. Numbers stay
// json.Number so integers survive exactly.
func (c *cli) readInput(path string) (docs []map[string]any, list bool, err error) {
	if path == "" {
		return nil, false, usageErrorf("-f FILE is required (- for stdin)")
	}
	var data []byte
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(c.stdin, maxInput+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, false, usageErrorf("read %s: %v", path, err)
	}
	if len(data) > maxInput {
		return nil, false, usageErrorf("%s is larger than %d bytes", path, maxInput)
	}
	v, err := decodeDocument(data)
	if err != nil {
		return nil, false, usageErrorf("%s: %v", path, err)
	}
	switch v := v.(type) {
	case map[string]any:
		return []map[string]any{v}, false, nil
	case []any:
		for i, item := range v {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, true, usageErrorf("%s: item %d of the list is not an object", path, i+1)
			}
			docs = append(docs, m)
		}
		if len(docs) == 0 {
			return nil, true, usageErrorf("%s: the list is empty", path)
		}
		return docs, true, nil
	}
	return nil, false, usageErrorf("%s must hold an object (or a list of objects)", path)
}

// decodeDocument turns YAML or JSON into plain JSON values with json.Number numbers.
// YAML is read with YAML 1.2 scalars (yaml.v3): only true and false are booleans, so a
// name such as "no" or "N" stays a string.
func decodeDocument(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("the file is empty")
	}
	var y any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&y); err != nil {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("the file holds more than one YAML document; use a list of objects instead")
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	j, err := json.Marshal(jsonable(y))
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	jd := json.NewDecoder(bytes.NewReader(j))
	jd.UseNumber()
	var v any
	if err := jd.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonable converts what yaml.v3 decodes into values encoding/json accepts: timestamps
// become RFC 3339 strings, and mappings with non-string keys fail in json.Marshal.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = jsonable(x)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = jsonable(x)
		}
		return v
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return v
}
