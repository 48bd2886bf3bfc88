"""The reserved subword ids, the same on both sides: <pad>=0, <unk>=1, <s>=2, </s>=3, so padding
masks and the decoder's start and stop symbols never depend on the language or the tokenizer."""

PAD, UNK, BOS, EOS = 0, 1, 2, 3
