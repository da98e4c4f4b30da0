// Package doccheck holds a test that keeps every exported name of the
// module's library packages documented.
package doccheck

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExportedNamesDocumented fails, listing file:line and name, for each
// exported function, method (on an exported type), type, struct field
// (nested struct types included), interface method, constant or variable
// of a library package that has no doc comment. A
// comment above the declaration, above its group or at the end of its line
// counts. Skipped: apps/, internal/, testdata, hidden directories, main
// packages and _test.go files.
func TestExportedNamesDocumented(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var missing []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (name == "apps" || name == "internal" || name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil
		}
		report := func(pos token.Pos, what string) {
			pp := fset.Position(pos)
			rel, err := filepath.Rel(root, pp.Filename)
			if err != nil {
				rel = pp.Filename
			}
			missing = append(missing, rel+":"+strconv.Itoa(pp.Line)+": "+what)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || d.Doc != nil {
					continue
				}
				if d.Recv != nil {
					recv := receiverName(d.Recv.List[0].Type)
					if !ast.IsExported(recv) {
						continue
					}
					report(d.Pos(), "method "+recv+"."+d.Name.Name)
					continue
				}
				report(d.Pos(), "func "+d.Name.Name)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						if d.Doc == nil && s.Doc == nil && s.Comment == nil {
							report(s.Pos(), "type "+s.Name.Name)
						}
						checkMembers(s.Name.Name, s.Type, report)
					case *ast.ValueSpec:
						for _, nm := range s.Names {
							if nm.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
								report(nm.Pos(), d.Tok.String()+" "+nm.Name)
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("%d exported names have no doc comment:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// checkMembers reports the exported fields of a struct type and the
// exported methods of an interface type that have no doc comment, in typ
// and in the struct and interface types nested in it (a field of type
// struct{…}, []struct{…} or map[string]struct{…}). Embedded fields and
// interfaces are not reported: their own type documents them.
func checkMembers(name string, typ ast.Expr, report func(token.Pos, string)) {
	switch t := typ.(type) {
	case *ast.StructType:
		for _, fl := range t.Fields.List {
			for _, nm := range fl.Names {
				if !nm.IsExported() {
					continue
				}
				if fl.Doc == nil && fl.Comment == nil {
					report(nm.Pos(), "field "+name+"."+nm.Name)
				}
				checkMembers(name+"."+nm.Name, fl.Type, report)
			}
		}
	case *ast.InterfaceType:
		for _, m := range t.Methods.List {
			for _, nm := range m.Names {
				if nm.IsExported() && m.Doc == nil && m.Comment == nil {
					report(nm.Pos(), "method "+name+"."+nm.Name)
				}
			}
		}
	case *ast.StarExpr:
		checkMembers(name, t.X, report)
	case *ast.ArrayType:
		checkMembers(name, t.Elt, report)
	case *ast.MapType:
		checkMembers(name, t.Value, report)
	}
}

// receiverName returns the name of a method's receiver type, without the
// pointer or type parameters.
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// moduleRoot walks up from the working directory to the directory that
// holds go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := os.Stat(filepath.Join(dir, "go.mod"))
		if err == nil {
			return dir
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}
