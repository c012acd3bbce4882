package codec_test

import (
	"fmt"

	"github.com/seed-a9a850dd/tp/codec"
)

func ExampleByName() {
	c, err := codec.ByName("form")
	if err != nil {
		fmt.Println(err)
		return
	}
	type query struct {
		Q    string `form:"q"`
		Page int    `form:"page"`
	}
	data, _ := c.Marshal(nil, query{Q: "tp rpc", Page: 2})
	fmt.Println(string(data))

	var back query
	c.Unmarshal(data, &back)
	fmt.Printf("%+v\n", back)
	// Output:
	// page=2&q=tp+rpc
	// {Q:tp rpc Page:2}
}
