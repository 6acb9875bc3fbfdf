/* proto/codec.c: placeholder until implemented */
typedef int cairn_placeholder_unused_;
