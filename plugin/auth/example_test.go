package auth_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/auth"
)

func Example() {
	check := auth.NewChecker(func(s *tp.Session, credential string) error {
		if !auth.Equal(credential, "open sesame") {
			return tp.NewStatus(tp.CodeUnauthorized, "wrong password", nil)
		}
		return nil
	})
	srv, err := tp.NewPeer(tp.PeerConfig{}, check)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	for _, password := range []string{"open sesame", "open barley"} {
		cli, err := tp.NewPeer(tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return password }))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := cli.Dial(context.Background(), ln.Addr().String()); err != nil {
			fmt.Printf("%q: %v\n", password, err)
		} else {
			fmt.Printf("%q: welcome\n", password)
		}
		cli.Close()
	}
	// Output:
	// "open sesame": welcome
	// "open barley": wrong password (unauthorized)
}
