{
  "targets": [
    {
      "target_name": "sockdiag",
      "conditions": [
        ["OS=='linux'", { "sources": ["sockdiag.c"] }]
      ]
    }
  ]
}
