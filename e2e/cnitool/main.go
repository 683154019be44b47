// cnitool drives CNI plugins through libcni, the library container runtimes embed, the way a
// runtime does: it loads a network configuration list by name, runs ADD, CHECK or DEL over the
// whole chain, and keeps libcni's result cache, so CHECK and DEL get the ADD result as prevResult.
//
//	cnitool add|check|del|result|versions|validate <network-name> [<netns-path>]
//
// Environment (as in the upstream cnitool):
//
//	NETCONFPATH     directory holding *.conflist / *.conf / *.json     (default /etc/cni/net.d)
//	CNI_PATH        plugin directories, ':'-separated                  (default /opt/cni/bin)
//	CNI_IFNAME      interface name in the container                    (default eth0)
//	CNI_ARGS        extra arguments, "K=V;K=V"
//	CAP_ARGS        capability arguments as a JSON object, e.g. {"portMappings": [...]}
//	CNI_CONTAINERID container ID (default: derived from the netns path)
//	CNI_CACHE_DIR   libcni's cache directory                           (default /var/lib/cni)
//	CNI_TIMEOUT     seconds to wait for the whole chain                (default 60)
//
// "result" prints the cached ADD result, "versions" what each plugin of the list answers to
// VERSION, "validate" runs libcni's validation of the list (every plugin found and speaking the
// list's cniVersion) and prints the capabilities it declares. The netns path may be empty for del (a runtime sends none once the netns is gone);
// CNI_CONTAINERID is then required.
//
// Build (Debian 12, no network): GO111MODULE=off GOPATH=/usr/share/gocode go build -o cnitool .
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

const usage = `usage: cnitool [-cache-dir DIR] add|check|del|result|versions|validate <network-name> [<netns-path>]

Runs a CNI network configuration list (found by name in NETCONFPATH) through libcni.
Environment: NETCONFPATH, CNI_PATH, CNI_IFNAME, CNI_ARGS, CAP_ARGS, CNI_CONTAINERID,
CNI_CACHE_DIR, CNI_TIMEOUT.
`

func getenv(key, fallback string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return fallback
}

// parseCNIArgs splits "K=V;K=V" into libcni's pairs.
func parseCNIArgs(s string) ([][2]string, error) {
	var out [][2]string
	for _, kv := range strings.Split(s, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("CNI_ARGS: %q is not KEY=VALUE", kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// containerID is CNI_CONTAINERID, else a stable ID derived from the netns path, so add and a
// later del of the same netns agree without the caller keeping anything.
func containerID(netns string) (string, error) {
	if id := os.Getenv("CNI_CONTAINERID"); id != "" {
		return id, nil
	}
	if netns == "" {
		return "", errors.New("no netns path and no CNI_CONTAINERID: cannot tell which attachment")
	}
	sum := sha256.Sum256([]byte(netns))
	return fmt.Sprintf("cnitool-%x", sum[:12]), nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("cnitool", flag.ContinueOnError)
	cacheDir := fs.String("cache-dir", getenv("CNI_CACHE_DIR", ""), "libcni result cache directory")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		fs.Usage()
		return errors.New("wrong number of arguments")
	}
	verb, netName, netns := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	if netns != "" {
		abs, err := filepath.Abs(netns)
		if err != nil {
			return err
		}
		netns = abs
	}

	list, err := libcni.LoadConfList(getenv("NETCONFPATH", "/etc/cni/net.d"), netName)
	if err != nil {
		return fmt.Errorf("load network %q: %w", netName, err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(
		filepath.SplitList(getenv("CNI_PATH", "/opt/cni/bin")), *cacheDir, nil)

	timeout := 60 * time.Second
	if s := os.Getenv("CNI_TIMEOUT"); s != "" {
		secs, err := strconv.Atoi(s)
		if err != nil || secs <= 0 {
			return fmt.Errorf("CNI_TIMEOUT: %q is not a positive number of seconds", s)
		}
		timeout = time.Duration(secs) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if verb == "versions" {
		out := map[string]interface{}{}
		for _, p := range list.Plugins {
			info, err := cni.GetVersionInfo(ctx, p.Network.Type)
			if err != nil {
				return fmt.Errorf("VERSION of %s: %w", p.Network.Type, err)
			}
			out[p.Network.Type] = info.SupportedVersions()
		}
		return printJSON(out)
	}

	if verb == "validate" {
		caps, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			return err
		}
		if caps == nil {
			caps = []string{}
		}
		return printJSON(map[string]interface{}{"capabilities": caps})
	}

	id, err := containerID(netns)
	if err != nil {
		return err
	}
	rt := &libcni.RuntimeConf{
		ContainerID: id,
		NetNS:       netns,
		IfName:      getenv("CNI_IFNAME", "eth0"),
	}
	if rt.Args, err = parseCNIArgs(os.Getenv("CNI_ARGS")); err != nil {
		return err
	}
	if s := os.Getenv("CAP_ARGS"); s != "" {
		if err := json.Unmarshal([]byte(s), &rt.CapabilityArgs); err != nil {
			return fmt.Errorf("CAP_ARGS is not a JSON object: %w", err)
		}
	}

	switch verb {
	case "add":
		if netns == "" {
			return errors.New("add needs a netns path")
		}
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		return printResult(result)
	case "check":
		if netns == "" {
			return errors.New("check needs a netns path")
		}
		return cni.CheckNetworkList(ctx, list, rt)
	case "del":
		return cni.DelNetworkList(ctx, list, rt)
	case "result":
		result, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil {
			return err
		}
		if result == nil {
			return fmt.Errorf("no cached result for network %q, container %q, ifname %q",
				netName, rt.ContainerID, rt.IfName)
		}
		return printResult(result)
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", verb)
	}
}

func printResult(result types.Result) error {
	// Print the result in the version the list declared, as the runtime sees it.
	if err := result.PrintTo(os.Stdout); err != nil {
		return err
	}
	_, err := fmt.Println()
	return err
}

func printJSON(v interface{}) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		var cniErr *types.Error
		if errors.As(err, &cniErr) {
			fmt.Fprintf(os.Stderr, "cnitool: %v (CNI error code %d)\n", err, cniErr.Code)
		} else {
			fmt.Fprintf(os.Stderr, "cnitool: %v\n", err)
		}
		os.Exit(1)
	}
}
