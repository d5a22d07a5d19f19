package router

import (
	"reflect"
	"testing"
)

// FuzzClassify: any text classifies without panicking, the same way twice,
// and a statement the parser rejects is never certain.
func FuzzClassify(f *testing.F) {
	for _, c := range classifyCases {
		f.Add(c.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		a := Classify(sql)
		b := Classify(sql)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("classification of %q is not deterministic", sql)
		}
		if a.ParseError != "" && a.Uncertain() == "" {
			t.Fatalf("unparsable %q classified as certain", sql)
		}
		for _, c := range a.Calls() {
			// An empty literal ('') is a valid (if useless) queue name;
			// a parameter number is always positive.
			if c.Target.Param < 0 || (c.Target.Null && (c.Target.Param != 0 || c.Target.Literal != "")) {
				t.Fatalf("%q: malformed target %+v", sql, c.Target)
			}
		}
	})
}
