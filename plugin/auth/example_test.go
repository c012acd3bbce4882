package auth_test

import (
	"fmt"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/auth"
)

func Example() {
	check := auth.NewChecker(func(s *tp.Session, credential string) *tp.Status {
		if credential != "open sesame" {
			return tp.NewStatus(tp.CodeUnauthorized, "wrong password", nil)
		}
		return nil
	})
	srv := tp.NewPeer(tp.PeerConfig{}, check)
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	for _, password := range []string{"open sesame", "open barley"} {
		cli := tp.NewPeer(tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return password }))
		_, st := cli.Dial(ln.Addr().String())
		if st != nil {
			fmt.Printf("%q: %v\n", password, st)
		} else {
			fmt.Printf("%q: welcome\n", password)
		}
		cli.Close()
	}
	// Output:
	// "open sesame": welcome
	// "open barley": wrong password (unauthorized)
}
