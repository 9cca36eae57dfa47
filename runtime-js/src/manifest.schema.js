// Generated from lexiedge_runtime/tasks/schema.py and the task specs by
//   python -m lexiedge_runtime.tasks runtime-js/src/manifest.schema.js
// Do not edit: tests/js/test_manifest_schema.py checks that it is what the generator writes.

export const TASKS = {
  "av-classification": {
    "generates": false,
    "metric": "uar"
  },
  "causal-lm": {
    "generates": true,
    "metric": "bleu"
  }
};

export const MANIFEST = "manifest.json";
export const MANIFEST_FORMAT = "lexiedge-artifact";
export const SUPPORTED_FORMAT_VERSIONS = [1];
export const FEEDS_VERSION = 1;

export const MANIFEST_SCHEMA = {
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "lexiedge-artifact/manifest.schema.json",
  "title": "lexiedge artifact manifest, format_version 1",
  "type": "object",
  "properties": {
    "format": {
      "const": "lexiedge-artifact"
    },
    "format_version": {
      "const": 1
    },
    "task": {
      "type": "string",
      "pattern": "."
    },
    "files": {
      "type": "object",
      "additionalProperties": {
        "type": "object",
        "properties": {
          "sha256": {
            "type": "string",
            "pattern": "^[0-9a-f]{64}$"
          },
          "bytes": {
            "anyOf": [
              {
                "type": "integer"
              },
              {
                "type": "null"
              }
            ],
            "minimum": 0
          }
        },
        "required": [
          "sha256"
        ],
        "description": "One file of the artifact: its sha256 (and size); the runtime refuses a file that no longer matches."
      },
      "minProperties": 1
    },
    "model": {
      "anyOf": [
        {
          "type": "string"
        },
        {
          "type": "null"
        }
      ]
    },
    "target": {
      "anyOf": [
        {
          "type": "string"
        },
        {
          "type": "null"
        }
      ]
    },
    "runtime": {
      "anyOf": [
        {
          "type": "object",
          "properties": {
            "engine": {
              "anyOf": [
                {
                  "type": "string"
                },
                {
                  "type": "null"
                }
              ],
              "pattern": "."
            },
            "graph": {
              "anyOf": [
                {
                  "type": "string"
                },
                {
                  "type": "null"
                }
              ]
            },
            "config": {
              "anyOf": [
                {
                  "type": "string"
                },
                {
                  "type": "null"
                }
              ]
            }
          },
          "required": [],
          "description": "What runs the artifact: the engine (which picks the runner) and the files it opens."
        },
        {
          "type": "null"
        }
      ]
    },
    "signature": {
      "anyOf": [
        {
          "type": "object",
          "properties": {
            "inputs": {
              "anyOf": [
                {
                  "type": "array",
                  "items": {
                    "type": "object",
                    "properties": {
                      "name": {
                        "type": "string"
                      },
                      "dtype": {
                        "anyOf": [
                          {
                            "type": "string"
                          },
                          {
                            "type": "null"
                          }
                        ]
                      },
                      "shape": {
                        "anyOf": [
                          {
                            "type": "array",
                            "items": {
                              "anyOf": [
                                {
                                  "anyOf": [
                                    {
                                      "type": "integer"
                                    },
                                    {
                                      "type": "string"
                                    }
                                  ]
                                },
                                {
                                  "type": "null"
                                }
                              ]
                            }
                          },
                          {
                            "type": "null"
                          }
                        ]
                      }
                    },
                    "required": [
                      "name"
                    ],
                    "description": "One graph input or output: name, dtype, shape (a size, an axis name, or null)."
                  }
                },
                {
                  "type": "null"
                }
              ]
            },
            "outputs": {
              "anyOf": [
                {
                  "type": "array",
                  "items": {
                    "type": "object",
                    "properties": {
                      "name": {
                        "type": "string"
                      },
                      "dtype": {
                        "anyOf": [
                          {
                            "type": "string"
                          },
                          {
                            "type": "null"
                          }
                        ]
                      },
                      "shape": {
                        "anyOf": [
                          {
                            "type": "array",
                            "items": {
                              "anyOf": [
                                {
                                  "anyOf": [
                                    {
                                      "type": "integer"
                                    },
                                    {
                                      "type": "string"
                                    }
                                  ]
                                },
                                {
                                  "type": "null"
                                }
                              ]
                            }
                          },
                          {
                            "type": "null"
                          }
                        ]
                      }
                    },
                    "required": [
                      "name"
                    ],
                    "description": "One graph input or output: name, dtype, shape (a size, an axis name, or null)."
                  }
                },
                {
                  "type": "null"
                }
              ]
            }
          },
          "required": [],
          "description": "The graph's inputs and outputs as the exporter's runtime reports them."
        },
        {
          "type": "null"
        }
      ]
    },
    "model_files": {
      "anyOf": [
        {
          "type": "array",
          "items": {
            "type": "string"
          }
        },
        {
          "type": "null"
        }
      ]
    },
    "size_bytes": {
      "anyOf": [
        {
          "type": "integer"
        },
        {
          "type": "null"
        }
      ],
      "minimum": 0
    },
    "verification": {
      "anyOf": [
        {
          "type": "object",
          "properties": {
            "passed": {
              "anyOf": [
                {
                  "type": "boolean"
                },
                {
                  "type": "null"
                }
              ]
            },
            "failure": {
              "anyOf": [
                {
                  "type": "string"
                },
                {
                  "type": "null"
                }
              ]
            }
          },
          "required": [],
          "description": "The export's verification against the source model; the runtime refuses one that did not pass."
        },
        {
          "type": "null"
        }
      ]
    }
  },
  "required": [
    "format",
    "format_version",
    "task",
    "files"
  ],
  "description": "manifest.json of a lexiedge artifact: the sections every artifact has (a task adds its own).",
  "allOf": [
    {
      "if": {
        "properties": {
          "task": {
            "const": "av-classification"
          }
        },
        "required": [
          "task"
        ]
      },
      "then": {
        "type": "object",
        "properties": {
          "labels": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "minItems": 1
          },
          "preprocessing": {
            "type": "object",
            "properties": {
              "waveform": {
                "anyOf": [
                  {
                    "type": "string"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "frames": {
                "anyOf": [
                  {
                    "type": "string"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "max_input_seconds": {
                "anyOf": [
                  {
                    "type": "number"
                  },
                  {
                    "type": "null"
                  }
                ],
                "exclusiveMinimum": 0,
                "maximum": 3600.0
              },
              "max_frames": {
                "anyOf": [
                  {
                    "type": "integer"
                  },
                  {
                    "type": "null"
                  }
                ],
                "minimum": 1,
                "maximum": 10000
              },
              "masks": {
                "anyOf": [
                  {
                    "type": "string"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "output": {
                "anyOf": [
                  {
                    "type": "string"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "data_plugin": {
                "anyOf": [
                  {
                    "type": "string"
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "data_settings": {
                "type": "object",
                "properties": {
                  "sample_rate": {
                    "type": "integer",
                    "minimum": 1000,
                    "maximum": 384000
                  },
                  "clip_seconds": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 3600.0
                  },
                  "frames": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 10000
                  },
                  "image_size": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 4096
                  },
                  "modalities": {
                    "anyOf": [
                      {
                        "type": "array",
                        "items": {
                          "enum": [
                            "audio",
                            "video"
                          ]
                        }
                      },
                      {
                        "type": "null"
                      }
                    ],
                    "minItems": 1
                  }
                },
                "required": [
                  "sample_rate",
                  "clip_seconds",
                  "frames",
                  "image_size"
                ],
                "description": "The clip contract: what a dataset serving this task declares in its settings, by these names. The model plugin builds its example batch from it, the exporter records the dataset's settings (``preprocessing.data_settings``, which hold these and more), and the runtime reads them back (:class:`ClassifierSpec`). ``modalities`` None: both."
              },
              "feeds": {
                "anyOf": [
                  {
                    "type": "object",
                    "properties": {
                      "version": {
                        "const": 1
                      },
                      "modalities": {
                        "type": "array",
                        "items": {
                          "enum": [
                            "audio",
                            "video"
                          ]
                        },
                        "minItems": 1
                      },
                      "waveform": {
                        "type": "object",
                        "properties": {
                          "input": {
                            "type": "string",
                            "pattern": "."
                          },
                          "dtype": {
                            "type": "string"
                          },
                          "layout": {
                            "type": "array",
                            "items": {
                              "type": "string"
                            }
                          },
                          "sample_rate": {
                            "type": "integer",
                            "minimum": 1000,
                            "maximum": 384000
                          },
                          "clip_samples": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1382400000
                          },
                          "range": {
                            "type": "array",
                            "items": {
                              "type": "number"
                            },
                            "minItems": 2,
                            "maxItems": 2
                          },
                          "min_seconds": {
                            "type": "number",
                            "exclusiveMinimum": 0
                          },
                          "max_seconds": {
                            "type": "number",
                            "exclusiveMinimum": 0
                          }
                        },
                        "required": [
                          "input",
                          "dtype",
                          "layout",
                          "sample_rate",
                          "clip_samples",
                          "range",
                          "min_seconds",
                          "max_seconds"
                        ],
                        "description": "How the audio input is fed: its graph input, rate, the training clip's length, range and limits."
                      },
                      "frames": {
                        "type": "object",
                        "properties": {
                          "input": {
                            "type": "string",
                            "pattern": "."
                          },
                          "dtype": {
                            "type": "string"
                          },
                          "layout": {
                            "type": "array",
                            "items": {
                              "type": "string"
                            }
                          },
                          "channels": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 4
                          },
                          "image_size": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 4096
                          },
                          "frame_count": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 10000
                          },
                          "max_frames": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 10000
                          },
                          "range": {
                            "type": "array",
                            "items": {
                              "type": "number"
                            },
                            "minItems": 2,
                            "maxItems": 2
                          },
                          "uint8_scale": {
                            "type": "number",
                            "exclusiveMinimum": 0
                          }
                        },
                        "required": [
                          "input",
                          "dtype",
                          "layout",
                          "channels",
                          "image_size",
                          "frame_count",
                          "max_frames",
                          "range",
                          "uint8_scale"
                        ],
                        "description": "How the video input is fed: its graph input, layout, size, frame counts, range and uint8 scaling."
                      },
                      "audio_mask": {
                        "type": "object",
                        "properties": {
                          "input": {
                            "type": "string",
                            "pattern": "."
                          },
                          "present": {
                            "type": "number"
                          },
                          "absent": {
                            "type": "number"
                          }
                        },
                        "required": [
                          "input",
                          "present",
                          "absent"
                        ],
                        "description": "A modality's mask input: the value that says present, and absent."
                      },
                      "video_mask": {
                        "type": "object",
                        "properties": {
                          "input": {
                            "type": "string",
                            "pattern": "."
                          },
                          "present": {
                            "type": "number"
                          },
                          "absent": {
                            "type": "number"
                          }
                        },
                        "required": [
                          "input",
                          "present",
                          "absent"
                        ],
                        "description": "A modality's mask input: the value that says present, and absent."
                      },
                      "outputs": {
                        "type": "object",
                        "properties": {
                          "probabilities": {
                            "type": "string",
                            "pattern": "."
                          },
                          "logits": {
                            "anyOf": [
                              {
                                "type": "string"
                              },
                              {
                                "type": "null"
                              }
                            ]
                          }
                        },
                        "required": [
                          "probabilities"
                        ],
                        "description": "The graph's outputs by role."
                      },
                      "range_slack": {
                        "type": "number",
                        "minimum": 0
                      },
                      "max_input_factor": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1000000
                      }
                    },
                    "required": [
                      "version",
                      "modalities",
                      "waveform",
                      "frames",
                      "audio_mask",
                      "video_mask",
                      "outputs",
                      "range_slack",
                      "max_input_factor"
                    ],
                    "description": "preprocessing.feeds: the input contract as data, what a runtime in another language reads."
                  },
                  {
                    "type": "null"
                  }
                ]
              },
              "media": {
                "anyOf": [
                  {
                    "type": "object",
                    "properties": {
                      "decoder": {
                        "const": "lexiedge_runtime.media.decode"
                      },
                      "version": {
                        "const": 1
                      },
                      "sample_rate": {
                        "type": "integer",
                        "minimum": 1000,
                        "maximum": 384000
                      },
                      "decoded_seconds": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 3600
                      },
                      "clip_samples": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1382400000
                      },
                      "frames": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 10000
                      },
                      "image_size": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 4096
                      },
                      "face_crop": {
                        "type": "boolean"
                      },
                      "face_detector": {
                        "anyOf": [
                          {
                            "type": "string"
                          },
                          {
                            "type": "null"
                          }
                        ]
                      },
                      "audio": {
                        "type": "boolean"
                      },
                      "video": {
                        "type": "boolean"
                      }
                    },
                    "required": [
                      "decoder",
                      "version",
                      "sample_rate",
                      "decoded_seconds",
                      "clip_samples",
                      "frames",
                      "image_size",
                      "face_crop",
                      "face_detector",
                      "audio",
                      "video"
                    ],
                    "description": "preprocessing.media: the decoder and options a classifier's files are decoded with, as in training."
                  },
                  {
                    "type": "null"
                  }
                ]
              }
            },
            "required": [
              "data_settings"
            ],
            "description": "preprocessing of a classifier: what an app must feed, as prose and as data, and how files decode."
          },
          "enrollment": {
            "anyOf": [
              {
                "type": "object",
                "properties": {
                  "version": {
                    "const": 1
                  },
                  "statistics_output": {
                    "type": "string",
                    "pattern": "."
                  },
                  "profile_inputs": {
                    "type": "object",
                    "properties": {
                      "mean": {
                        "type": "string",
                        "pattern": "."
                      },
                      "std": {
                        "type": "string",
                        "pattern": "."
                      }
                    },
                    "required": [
                      "mean",
                      "std"
                    ],
                    "description": "The graph inputs a speaker profile is fed to: its per-feature mean and standard deviation."
                  },
                  "features": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000
                  },
                  "variance_floor": {
                    "type": "number",
                    "exclusiveMinimum": 0
                  },
                  "min_clips": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 10000
                  },
                  "profile": {
                    "anyOf": [
                      {
                        "type": "string"
                      },
                      {
                        "type": "null"
                      }
                    ]
                  }
                },
                "required": [
                  "version",
                  "statistics_output",
                  "profile_inputs",
                  "features",
                  "variance_floor",
                  "min_clips"
                ],
                "description": "enrollment: how an app turns a speaker's clips into the profile a speaker-normalised graph takes. Run the graph on each clip; the profile's mean is the average over the clips of ``statistics_output[:, 0]``, its std sqrt(max(the average of ``statistics_output[:, 1]`` - mean^2, ``variance_floor``)), fed as ``profile_inputs`` with every later clip of that speaker. At least ``min_clips`` clips; without a profile the graph uses the global training statistics."
              },
              {
                "type": "null"
              }
            ]
          }
        },
        "required": [
          "labels",
          "preprocessing"
        ],
        "description": "The av-classification part of manifest.json: the labels, what the model reads and, for a model normalised by its speaker, how to enroll one."
      }
    },
    {
      "if": {
        "properties": {
          "task": {
            "const": "causal-lm"
          }
        },
        "required": [
          "task"
        ]
      },
      "then": {
        "type": "object",
        "properties": {
          "architecture": {
            "anyOf": [
              {
                "type": "object",
                "properties": {
                  "vocab_size": {
                    "anyOf": [
                      {
                        "type": "integer"
                      },
                      {
                        "type": "null"
                      }
                    ],
                    "minimum": 1
                  }
                },
                "required": [],
                "description": "architecture: the model's shape (the config's numbers); the runtime reads the vocabulary size."
              },
              {
                "type": "null"
              }
            ]
          },
          "tokenizer": {
            "anyOf": [
              {
                "type": "object",
                "properties": {
                  "files": {
                    "anyOf": [
                      {
                        "type": "array",
                        "items": {
                          "type": "string"
                        }
                      },
                      {
                        "type": "null"
                      }
                    ]
                  },
                  "chat_template": {
                    "anyOf": [
                      {
                        "type": "string"
                      },
                      {
                        "type": "null"
                      }
                    ]
                  },
                  "eos_token_ids": {
                    "anyOf": [
                      {
                        "anyOf": [
                          {
                            "type": "array",
                            "items": {
                              "type": "integer"
                            }
                          },
                          {
                            "type": "integer"
                          }
                        ]
                      },
                      {
                        "type": "null"
                      }
                    ]
                  }
                },
                "required": [],
                "description": "tokenizer: the files that tokenize prompts as in training, the chat template, the ids ending a turn."
              },
              {
                "type": "null"
              }
            ]
          },
          "preprocessing": {
            "anyOf": [
              {
                "type": "object",
                "properties": {
                  "input": {
                    "type": "string"
                  },
                  "kv_cache": {
                    "type": "string"
                  }
                },
                "required": [
                  "input",
                  "kv_cache"
                ],
                "description": "preprocessing of a causal LM: what an app feeds the decoder, in words."
              },
              {
                "type": "null"
              }
            ]
          }
        },
        "required": [],
        "description": "The causal-lm part of manifest.json."
      }
    }
  ]
};
