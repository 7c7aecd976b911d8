"""Face affect: YuNet detection, FER-like aligned crops, teacher/student nets, eq. 1-3 distillation, training, evaluation."""
