/* query/main.c: the cairn-query binary; everything lives in the query library (query/query.h). */
#include "query/query.h"

int main(int argc, char **argv) { return qry_main(argc, argv, stdout, stderr); }
