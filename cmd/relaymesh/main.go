// Command relaymesh is the relaymesh agent: see `relaymesh help`.
package main

import (
	"os"

	"github.com/relaymesh/relaymesh/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
