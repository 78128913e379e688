#include <stdio.h>
int main(void) { puts("aigw"); return 0; }
