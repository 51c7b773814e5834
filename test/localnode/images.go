package localnode

import (
	"fmt"
	"strings"
)

// ImageRule maps the images matching Pattern to the local binary Binary.
// In Pattern, "*" stands for any text, including none; everything else
// must match the image reference exactly as written in the pod.
type ImageRule struct {
	Pattern string
	Binary  string
}

// ParseImageRule reads "PATTERN=BINARY", the form of the command's -image flag.
func ParseImageRule(s string) (ImageRule, error) {
	pattern, binary, ok := strings.Cut(s, "=")
	if !ok || pattern == "" || binary == "" {
		return ImageRule{}, fmt.Errorf("image rule %q: want PATTERN=BINARY", s)
	}
	return ImageRule{Pattern: pattern, Binary: binary}, nil
}

// binaryFor returns the binary of the first rule whose pattern matches image.
func binaryFor(rules []ImageRule, image string) (string, bool) {
	for _, r := range rules {
		if globMatch(r.Pattern, image) {
			return r.Binary, true
		}
	}
	return "", false
}

// globMatch matches s against a pattern where "*" is any text.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}
