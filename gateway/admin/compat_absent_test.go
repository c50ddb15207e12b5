package admin

// Kong entities this node does not have yet answer as a Kong with none of
// them configured.
func init() {
	var steps []compatStep
	for _, c := range []string{"/upstreams", "/snis", "/ca_certificates", "/vaults", "/keys", "/key-sets"} {
		steps = append(steps,
			compatStep{method: "GET", path: c, status: 200, want: `{"data":[],"next":null,"offset":"<absent>"}`},
			compatStep{method: "GET", path: c + "?tags=a&size=10", status: 200, want: `{"data":[],"next":null}`},
			compatStep{method: "POST", path: c, body: `{"name":"x"}`, status: 405,
				want: `{"code":12,"name":"operation unsupported"}`},
			compatStep{method: "GET", path: c + "/x", status: 404, want: `{"message":"Not found"}`},
			compatStep{method: "PUT", path: c + "/x", body: `{}`, status: 405, want: `{"code":12}`},
			compatStep{method: "PATCH", path: c + "/x", body: `{}`, status: 405, want: `{"code":12}`},
			compatStep{method: "DELETE", path: c + "/x", status: 204},
		)
	}
	steps = append(steps,
		compatStep{method: "GET", path: "/upstreams/u1/targets", status: 404, want: `{"message":"Not found"}`},
	)
	compatScenarios = append(compatScenarios, compatScenario{"entities this node does not have", steps})
}
