{
  "targets": [
    {
      "target_name": "sockdiag",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/sockdiag.c"] }]
      ]
    }
  ]
}
